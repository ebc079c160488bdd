package integration

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// SCMP_ACT_NOTIFY: the notify fd and the container state reach the listener
// at linux.seccomp.listenerPath, and an agent holding the fd decides the result.
func TestSeccompNotifyFdReachesTheListenerAndTheAgentAnswers(t *testing.T) {
	e := newEnv(t, "sh", "-c", "mkdir /tmp/notified; echo mkdir-exit=$?")
	sock := filepath.Join(e.dir, "seccomp.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction:    specs.ActAllow,
		Architectures:    []specs.Arch{specs.ArchX86_64},
		ListenerPath:     sock,
		ListenerMetadata: "meta-42",
		Syscalls:         []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
	}
	type result struct {
		msg specs.ContainerProcessState
		err string
	}
	got := make(chan result, 1)
	go func() {
		_ = l.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := l.AcceptUnix()
		if err != nil {
			got <- result{err: err.Error()}
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- result{err: err.Error()}
			return
		}
		var r result
		if err := json.Unmarshal(buf[:n], &r.msg); err != nil {
			got <- result{err: "bad json: " + err.Error()}
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			got <- result{err: "no fd"}
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		fd := libseccomp.ScmpFd(fds[0])
		defer unix.Close(fds[0])
		req, err := libseccomp.NotifReceive(fd)
		if err != nil {
			got <- result{err: "receive: " + err.Error()}
			return
		}
		// Deny the mkdir with ENOSPC: only an agent with the fd can say that.
		if err := libseccomp.NotifRespond(fd, &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.ENOSPC)}); err != nil {
			r.err = "respond: " + err.Error()
		}
		got <- r
	}()
	out, code := e.run("notify")
	r := <-got
	if r.err != "" {
		t.Fatalf("listener: %s (container exit %d, output %q)", r.err, code, out)
	}
	if len(r.msg.Fds) != 1 || r.msg.Fds[0] != specs.SeccompFdName || r.msg.Metadata != "meta-42" || r.msg.State.ID != "notify" || r.msg.Pid <= 0 {
		t.Fatalf("listener message %+v", r.msg)
	}
	if code != 0 || !strings.Contains(out, "mkdir-exit=1") || !strings.Contains(strings.ToLower(out), "no space") {
		t.Fatalf("mkdir was not answered by the agent (exit %d): %q", code, out)
	}
}

// Compiled profiles are cached under --root; a start from the cache enforces
// the same filter.
func TestSeccompProfileIsCompiledOnceAndEnforcedFromTheCache(t *testing.T) {
	e := newEnv(t, "sh", "-c", "mkdir /dev/shm/x && echo mkdir-allowed")
	errno := uint(1)
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno}},
	}
	for i, id := range []string{"cache1", "cache2"} {
		out, code := e.run(id)
		if code == 0 || strings.Contains(out, "mkdir-allowed") {
			t.Fatalf("run %d: mkdir was not denied (exit %d): %q", i, code, out)
		}
		files, _ := filepath.Glob(filepath.Join(e.root, ".seccomp-cache", "*.bpf"))
		if len(files) != 1 {
			t.Fatalf("run %d: cache holds %v, want one compiled profile", i, files)
		}
	}
}
