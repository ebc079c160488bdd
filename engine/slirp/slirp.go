// Package slirp gives a rootless container a network: slirp4netns(1)
// attaches a tap device in the container's network namespace to a user-mode
// TCP/IP stack in the host's, so the container reaches what the user can
// (NAT, 10.0.2.0/24, gateway 10.0.2.2, DNS 10.0.2.3), and publishes ports
// through slirp4netns's API socket. Root uses CNI bridges instead; a user
// cannot make bridges or iptables rules in the host's namespace. Podman's
// rootless default is the same tool.
//
// One slirp4netns runs per container network namespace, in a session of its
// own, from Start until Stop (the namespace lives that long too).
package slirp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/engine/internal/proc"
)

// DNS is slirp4netns's DNS forwarder, for the container's resolv.conf.
const DNS = "10.0.2.3"

// Port is one published port.
type Port struct {
	HostIP        string // "" for all addresses
	HostPort      uint16
	ContainerPort uint16
	Protocol      string // tcp or udp
}

// files slirp keeps in the container's state dir.
const pidFile = "slirp4netns.pid"

// Available reports whether slirp4netns is installed.
func Available() error {
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		return fmt.Errorf("rootless networking needs slirp4netns (apt-get install slirp4netns), or use --network none or host: %w", err)
	}
	return nil
}

// Start runs slirp4netns for the namespace at netns, publishes ports, and
// records its pid in stateDir. sock is the API socket's path (short: it is
// a sun_path). On error nothing is left running.
func Start(netns, stateDir, sock string, ports []Port) error {
	bin, err := exec.LookPath("slirp4netns")
	if err != nil {
		return Available()
	}
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		return err
	}
	_ = os.Remove(sock)
	ready, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer ready.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		readyW.Close()
		return err
	}
	defer null.Close()
	// Its messages go to a log beside the pid file: a pipe nobody reads
	// once Start returns would kill it with SIGPIPE.
	logPath := filepath.Join(stateDir, "slirp4netns.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		readyW.Close()
		return err
	}
	defer logf.Close()
	args := []string{"--configure", "--mtu=65520", "--disable-host-loopback",
		"--netns-type=path", "--api-socket", filepath.Base(sock), "--ready-fd=3", netns, "tap0"}
	p, err := os.StartProcess(bin, append([]string{"slirp4netns"}, args...), &os.ProcAttr{
		// Run in the socket's dir with a relative socket name: a long
		// runroot would not fit sun_path's 108 bytes.
		Dir: filepath.Dir(sock), Files: []*os.File{null, logf, logf, readyW},
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	readyW.Close()
	if err != nil {
		return fmt.Errorf("start slirp4netns: %w", err)
	}
	exited := make(chan struct{})
	go func() { _, _ = p.Wait(); close(exited) }()
	fail := func(err error) error {
		_ = p.Kill()
		<-exited
		_ = os.Remove(sock)
		return err
	}
	// It writes "1" once the tap device is configured.
	_ = ready.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if n, _ := ready.Read(b); n != 1 || b[0] != '1' {
		msg, _ := os.ReadFile(logPath)
		return fail(fmt.Errorf("slirp4netns did not come up: %s", strings.TrimSpace(string(msg))))
	}
	for _, port := range ports {
		if err := addHostFwd(sock, port); err != nil {
			return fail(err)
		}
	}
	st, err := proc.StartTime(p.Pid)
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, pidFile), fmt.Appendf(nil, "%d %d %s\n", p.Pid, st, sock), 0o600); err != nil {
		return fail(err)
	}
	return nil
}

// Stop ends the slirp4netns Start recorded in stateDir (if it still runs:
// a recorded pid whose start time differs is another process now).
func Stop(stateDir string) error {
	path := filepath.Join(stateDir, pidFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var pid int
	var st uint64
	var sock string
	if _, err := fmt.Sscanf(string(b), "%d %d %s", &pid, &st, &sock); err == nil && pid > 0 {
		if cur, err := proc.StartTime(pid); err == nil && cur == st {
			if err := terminate(pid); err != nil {
				return fmt.Errorf("stop slirp4netns %d: %w", pid, err)
			}
		}
		if sock != "" {
			_ = os.Remove(sock)
		}
	}
	return os.Remove(path)
}

// terminate sends SIGTERM and waits up to 2 s for the process to go (then
// SIGKILL), so that nothing of the container's network outlives rm.
func terminate(pid int) error {
	pfd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.PidfdSendSignal(pfd, unix.SIGTERM, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return err
	}
	fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if n, _ := unix.Poll(fds, int(time.Until(deadline)/time.Millisecond)+1); n > 0 {
			return nil
		}
	}
	return unix.PidfdSendSignal(pfd, unix.SIGKILL, nil, 0)
}

// addHostFwd asks slirp4netns to forward a host port into the namespace.
func addHostFwd(sock string, p Port) error {
	// Through an fd of the socket's dir, for the same reason.
	dir, err := os.Open(filepath.Dir(sock))
	if err != nil {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	defer dir.Close()
	c, err := net.DialTimeout("unix", fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(sock)), 5*time.Second)
	if err != nil {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	hostAddr := p.HostIP
	if hostAddr == "" {
		hostAddr = "0.0.0.0"
	}
	proto := p.Protocol
	if proto == "" {
		proto = "tcp"
	}
	req := map[string]any{"execute": "add_hostfwd", "arguments": map[string]any{
		"proto": proto, "host_addr": hostAddr, "host_port": int(p.HostPort), "guest_port": int(p.ContainerPort),
	}}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	// The server answers once and expects the client to stop writing.
	if uc, ok := c.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	reply, err := io.ReadAll(io.LimitReader(c, 64<<10))
	if err != nil && len(reply) == 0 {
		return fmt.Errorf("slirp4netns API: publish %s:%d: %w", hostAddr, p.HostPort, err)
	}
	var resp struct {
		Error *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply, &resp); err != nil {
		return fmt.Errorf("slirp4netns API: publish %s:%d: reply %q: %w", hostAddr, p.HostPort, reply, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("publish %s:%d/%s: %s", hostAddr, p.HostPort, proto, resp.Error.Desc)
	}
	return nil
}
