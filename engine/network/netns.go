package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ensureNetnsDir makes NetnsDir a shared mount point, as iproute2 does for
// /run/netns. Mount namespaces copied from the host after a netns was
// mounted (a container's, a systemd unit's) then receive our unmount, so
// they do not keep the namespace (and Teardown's work) alive forever.
func (m *Manager) ensureNetnsDir() error {
	l, err := lockPath(filepath.Join(m.cfg.StateDir, "netns.lock"))
	if err != nil {
		return err
	}
	defer l.unlock()
	dir := m.cfg.NetnsDir
	mounted, err := mountinfo.Mounted(dir)
	if err != nil {
		return fmt.Errorf("netns dir %s: %w", dir, err)
	}
	if !mounted {
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind netns dir %s: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make netns dir %s shared: %w", dir, err)
	}
	return nil
}

// createNetns makes a new network namespace and bind-mounts it at path,
// which must not exist. lo is brought up, then inNS (if not nil) runs
// inside the namespace with a netlink handle bound to it.
//
// The namespace is entered with unshare on a thread that is thrown away
// afterwards (onDisposableThread), so nothing ever has to switch a thread
// back and no goroutine can later run in the container's namespace.
func createNetns(path string, inNS func(h *netlink.Handle) error) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file: %w", err)
	}
	f.Close()

	err = onDisposableThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount netns at %s: %w", path, err)
		}
		// A handle opened here has its sockets in the new namespace. Only
		// NETLINK_ROUTE: with no family, every one netlink knows is opened,
		// and a kernel without XFRM or netfilter netlink refuses the lot.
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink in new netns: %w", err)
		}
		defer h.Close()
		lo, err := h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("find lo in new netns: %w", err)
		}
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up: %w", err)
		}
		if inNS != nil {
			return inNS(h)
		}
		return nil
	})
	if err != nil {
		if rerr := removeNetns(path); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	return nil
}

// onDisposableThread runs fn on an OS thread that no other goroutine will
// ever use: fn may change per-thread state (namespaces) and leave it so.
//
// The goroutine locks its thread and returns without unlocking, so the
// runtime terminates the thread. The exception is the main thread, which
// Go cannot terminate and instead parks forever, still holding whatever
// namespace fn left it in; so if the goroutine landed there, it keeps the
// main thread pinned while a second goroutine (necessarily on another
// thread) runs fn, then unlocks the untouched main thread.
func onDisposableThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			err := onDisposableThread(fn)
			runtime.UnlockOSThread()
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// removeNetns unmounts and deletes a netns file; a missing file or one that
// is no longer mounted is fine. The lazy unmount lets a namespace that a
// process still uses (a lingering exec) outlive the file instead of making
// Teardown fail.
func removeNetns(path string) error {
	for range 8 { // the same file may have been mounted more than once
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("unmount netns %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// isNetns reports whether path is a mounted network namespace (and not,
// say, the empty file a crash between create and mount leaves).
func isNetns(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// DialInNetns connects to address from inside the network namespace at
// nsPath ("" or "host": this process's own), as a pod's port forward must:
// the socket is made on a thread that joined the namespace (a socket stays
// in the namespace it was made in) and that thread is thrown away.
func DialInNetns(ctx context.Context, nsPath, network, address string) (net.Conn, error) {
	if nsPath == "" || nsPath == "host" {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	ns, err := os.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	var conn net.Conn
	err = onDisposableThread(func() error {
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join network namespace %s: %w", nsPath, err)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, address)
		conn = c
		return err
	})
	return conn, err
}
