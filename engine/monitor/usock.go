package monitor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Unix sockets without package net: net adds more than half a megabyte of
// resident text to every monitor. A non-blocking socket wrapped in an
// os.File is served by the same poller, with deadlines, and accept and
// recvmsg go through RawConn so they wait in the poller too.

// maxSunPath is sun_path's size minus the terminating NUL.
const maxSunPath = 107

// sockName returns a name for path that fits sun_path: path itself, or
// /proc/self/fd/N/BASE through an O_PATH fd of its dir when path is too long
// (the kernel resolves the magic link at bind and connect time). done closes
// that fd.
func sockName(path string) (name string, done func(), err error) {
	return shortSockName(path, "/proc/self")
}

// peerSockName is sockName for another process (the runtime) to connect
// to: /proc/<monitor pid>/fd/N/BASE when path is too long for sun_path.
func peerSockName(path string) (name string, done func(), err error) {
	return shortSockName(path, "/proc/"+strconv.Itoa(os.Getpid()))
}

func shortSockName(path, procSelf string) (name string, done func(), err error) {
	if len(path) <= maxSunPath {
		return path, func() {}, nil
	}
	dfd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, wrap(err, "open socket dir")
	}
	name = procSelf + "/fd/" + strconv.Itoa(dfd) + "/" + filepath.Base(path)
	if len(name) > maxSunPath {
		unix.Close(dfd)
		return "", nil, errorOf("socket name ", filepath.Base(path), " too long")
	}
	return name, func() { unix.Close(dfd) }, nil
}

// listenUnix binds a stream socket at path with mode 0600, replacing a stale
// socket file. The socket is a filesystem path, never abstract.
func listenUnix(path string) (*os.File, error) {
	name, done, err := sockName(path)
	if err != nil {
		return nil, err
	}
	defer done()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, wrap(err, "socket")
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		unix.Close(fd)
		return nil, wrap(err, "remove stale ", path)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		unix.Close(fd)
		return nil, wrap(err, "bind ", path)
	}
	// The dir is 0700, so the socket is never reachable before this chmod.
	if err := os.Chmod(path, 0o600); err != nil {
		unix.Close(fd)
		return nil, wrap(err, "chmod ", path)
	}
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		return nil, wrap(err, "listen ", path)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// acceptUnix waits in the poller for a connection on l; closing l ends it.
func acceptUnix(l *os.File) (*os.File, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN && aerr != unix.EINTR
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, wrap(aerr, "accept")
	}
	return os.NewFile(uintptr(nfd), "attach-conn"), nil
}

// dialUnix connects to the socket at path.
func dialUnix(ctx context.Context, path string) (*os.File, error) {
	name, done, err := sockName(path)
	if err != nil {
		return nil, err
	}
	defer done()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, wrap(err, "socket")
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: name})
		// A unix stream connect only waits when the listen backlog is full,
		// and then fails with EAGAIN instead of EINPROGRESS.
		if err != unix.EAGAIN && err != unix.EINTR {
			break
		}
		select {
		case <-ctx.Done():
			unix.Close(fd)
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, wrap(err, "connect ", path)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// recvFd receives one fd sent with SCM_RIGHTS (the runtime's console socket
// protocol: the pty master, with the terminal's name as payload).
func recvFd(conn *os.File) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	var oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		_, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	if err != nil {
		return -1, err
	}
	if rerr != nil {
		return -1, wrap(rerr, "recvmsg")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return -1, wrap(err, "parse control message")
	}
	got := -1
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if got < 0 {
				got = fd
			} else {
				unix.Close(fd) // only one was expected
			}
		}
	}
	if got < 0 {
		return -1, errors.New("console socket: no fd received")
	}
	return got, nil
}
