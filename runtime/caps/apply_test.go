package caps

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// helperEnv, when set, turns the test binary into a helper that applies
// capabilities to itself (see runHelper); its value is a JSON helperRequest.
const helperEnv = "HULL_CAPS_TEST_HELPER"

func TestMain(m *testing.M) {
	if req := os.Getenv(helperEnv); req != "" {
		os.Exit(runHelper(req))
	}
	os.Exit(m.Run())
}

type helperRequest struct {
	Caps *specs.LinuxCapabilities
	// SeedInheritable is raised into the helper's own inheritable set
	// before applying, standing for a runtime that leaks its own.
	SeedInheritable []string
	// DropSetpcap removes CAP_SETPCAP from the effective set before
	// ApplyBounding.
	DropSetpcap bool
	// RepeatBoundingWithoutSetpcap applies the bounding set, drops
	// CAP_SETPCAP from the effective set, and applies it again.
	RepeatBoundingWithoutSetpcap bool
	// Uid and Gid, when not 0, are switched to between the two steps.
	Uid, Gid int
	// Exec runs /bin/cat /proc/self/status after applying, so the report
	// shows the sets after execve.
	Exec bool
}

// runHelper is the child side. It prints "ERR: ..." or the calling
// thread's /proc status (or, with Exec, cat's).
func runHelper(reqJSON string) int {
	var req helperRequest
	if err := json.Unmarshal([]byte(reqJSON), &req); err != nil {
		fmt.Println("ERR: bad request:", err)
		return 0
	}
	runtime.LockOSThread()
	if err := helperApply(req); err != nil {
		fmt.Println("ERR:", err)
		return 0
	}
	if req.Exec {
		err := syscall.Exec("/bin/cat", []string{"cat", "/proc/self/status"}, os.Environ())
		fmt.Println("ERR: exec:", err)
		return 0
	}
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fmt.Println("ERR:", err)
		return 0
	}
	os.Stdout.Write(status)
	return 0
}

// editOwnCaps changes the calling thread's capabilities with f.
func editOwnCaps(f func(d *[2]unix.CapUserData)) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var d [2]unix.CapUserData
	if err := unix.Capget(&hdr, &d[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	f(&d)
	if err := unix.Capset(&hdr, &d[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func dropSetpcap() error {
	return editOwnCaps(func(d *[2]unix.CapUserData) { d[0].Effective &^= 1 << capability.CAP_SETPCAP })
}

func helperApply(req helperRequest) error {
	if len(req.SeedInheritable) > 0 {
		seed, err := Parse(req.SeedInheritable)
		if err != nil {
			return err
		}
		m := maskOf(seed)
		if err := editOwnCaps(func(d *[2]unix.CapUserData) {
			d[0].Inheritable |= uint32(m)
			d[1].Inheritable |= uint32(m >> 32)
		}); err != nil {
			return fmt.Errorf("seeding inheritable: %w", err)
		}
	}
	s, err := FromSpec(req.Caps)
	if err != nil {
		return err
	}
	if req.DropSetpcap {
		if err := dropSetpcap(); err != nil {
			return err
		}
	}
	if err := s.ApplyBounding(); err != nil {
		return err
	}
	if req.RepeatBoundingWithoutSetpcap {
		if err := dropSetpcap(); err != nil {
			return err
		}
		if err := s.ApplyBounding(); err != nil {
			return fmt.Errorf("second ApplyBounding: %w", err)
		}
	}
	if req.Uid != 0 || req.Gid != 0 {
		// This thread only, as the runtime's init must do it.
		if _, _, errno := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); errno != 0 {
			return fmt.Errorf("setgroups: %w", errno)
		}
		if _, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(req.Gid), uintptr(req.Gid), uintptr(req.Gid)); errno != 0 {
			return fmt.Errorf("setresgid: %w", errno)
		}
		if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(req.Uid), uintptr(req.Uid), uintptr(req.Uid)); errno != 0 {
			return fmt.Errorf("setresuid: %w", errno)
		}
	}
	return s.ApplyRest()
}

// capStatus is the Cap* lines of a /proc status file.
type capStatus struct {
	Inh, Prm, Eff, Bnd, Amb uint64
}

func inHelper(t *testing.T, req helperRequest) (capStatus, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("changing the bounding set needs root")
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if msg, ok := strings.CutPrefix(out, "ERR: "); ok {
		return capStatus{}, strings.TrimSpace(msg)
	}
	var st capStatus
	fields := map[string]*uint64{"CapInh:": &st.Inh, "CapPrm:": &st.Prm, "CapEff:": &st.Eff, "CapBnd:": &st.Bnd, "CapAmb:": &st.Amb}
	seen := 0
	for line := range strings.Lines(out) {
		k, v, ok := strings.Cut(line, "\t")
		if dst := fields[k]; ok && dst != nil {
			if *dst, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				t.Fatalf("helper status line %q: %v", line, err)
			}
			seen++
		}
	}
	if seen != len(fields) {
		t.Fatalf("helper status lacks Cap* lines:\n%s", out)
	}
	return st, ""
}

func capMask(t *testing.T, names ...string) uint64 {
	t.Helper()
	caps, err := Parse(names)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(maskOf(caps))
}

func wantCaps(t *testing.T, got, want capStatus) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"CapInh", got.Inh, want.Inh}, {"CapPrm", got.Prm, want.Prm}, {"CapEff", got.Eff, want.Eff},
		{"CapBnd", got.Bnd, want.Bnd}, {"CapAmb", got.Amb, want.Amb},
	} {
		if f.got != f.want {
			t.Errorf("%s = %s, want %s", f.name, mask(f.got).names(), mask(f.want).names())
		}
	}
}

func TestApplyDropsRootToASmallSet(t *testing.T) {
	st, errMsg := inHelper(t, helperRequest{Caps: &specs.LinuxCapabilities{
		Bounding:  []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
		Effective: []string{"CAP_CHOWN", "CAP_KILL"},
		Permitted: []string{"CAP_CHOWN", "CAP_KILL"},
	}})
	if errMsg != "" {
		t.Fatal(errMsg)
	}
	wantCaps(t, st, capStatus{
		Bnd: capMask(t, "CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
		Eff: capMask(t, "CAP_CHOWN", "CAP_KILL"),
		Prm: capMask(t, "CAP_CHOWN", "CAP_KILL"),
	})
}

func TestInheritableIsResetUnlessListed(t *testing.T) {
	// CVE-2022-29162: whatever the runtime had, the container's inheritable
	// set is the config's, empty by default.
	seed := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	all := &specs.LinuxCapabilities{Bounding: seed, Effective: seed, Permitted: seed}
	st, errMsg := inHelper(t, helperRequest{Caps: all, SeedInheritable: seed})
	if errMsg != "" {
		t.Fatal(errMsg)
	}
	if st.Inh != 0 {
		t.Errorf("CapInh = %s, want empty", mask(st.Inh).names())
	}

	listed := *all
	listed.Inheritable = []string{"CAP_KILL"}
	st, errMsg = inHelper(t, helperRequest{Caps: &listed, SeedInheritable: seed})
	if errMsg != "" {
		t.Fatal(errMsg)
	}
	if want := capMask(t, "CAP_KILL"); st.Inh != want {
		t.Errorf("CapInh = %s, want CAP_KILL", mask(st.Inh).names())
	}
}

func TestAmbientCapabilitySurvivesUidChangeAndExec(t *testing.T) {
	nbs := []string{"CAP_NET_BIND_SERVICE"}
	st, errMsg := inHelper(t, helperRequest{
		Caps: &specs.LinuxCapabilities{
			Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
			Effective:   nbs,
			Permitted:   nbs,
			Inheritable: nbs,
			Ambient:     nbs,
		},
		Uid: 65534, Gid: 65534,
		Exec: true,
	})
	if errMsg != "" {
		t.Fatal(errMsg)
	}
	m := capMask(t, nbs...)
	wantCaps(t, st, capStatus{Inh: m, Prm: m, Eff: m, Amb: m, Bnd: capMask(t, "CAP_NET_BIND_SERVICE", "CAP_KILL")})
}

func TestAmbientOutsidePermittedAndInheritableIsSkipped(t *testing.T) {
	st, errMsg := inHelper(t, helperRequest{Caps: &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
		Effective:   []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
		Permitted:   []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
		Inheritable: []string{"CAP_NET_BIND_SERVICE"},
		Ambient:     []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
	}})
	if errMsg != "" {
		t.Fatal(errMsg)
	}
	if want := capMask(t, "CAP_NET_BIND_SERVICE"); st.Amb != want {
		t.Errorf("CapAmb = %s, want CAP_NET_BIND_SERVICE", mask(st.Amb).names())
	}
}

func TestApplyBoundingWithoutSetpcapFails(t *testing.T) {
	_, errMsg := inHelper(t, helperRequest{
		Caps:        &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}},
		DropSetpcap: true,
	})
	if !strings.Contains(errMsg, "needs CAP_SETPCAP") || !strings.Contains(errMsg, "operation not permitted") {
		t.Fatalf("ApplyBounding without CAP_SETPCAP: %q, want an EPERM error naming CAP_SETPCAP", errMsg)
	}
}

func TestApplyBoundingTwiceNeedsNoSetpcap(t *testing.T) {
	st, errMsg := inHelper(t, helperRequest{
		Caps: &specs.LinuxCapabilities{
			Bounding:  []string{"CAP_CHOWN"},
			Effective: []string{"CAP_CHOWN"},
			Permitted: []string{"CAP_CHOWN"},
		},
		RepeatBoundingWithoutSetpcap: true,
	})
	if errMsg != "" {
		t.Fatal(errMsg)
	}
	if want := capMask(t, "CAP_CHOWN"); st.Bnd != want {
		t.Errorf("CapBnd = %s, want CAP_CHOWN", mask(st.Bnd).names())
	}
}
