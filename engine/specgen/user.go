package specgen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// maxUserDBSize bounds how much of the image's /etc/passwd or /etc/group is
// read: the files come from the image and must not make hull read without
// end. Real files are far smaller.
const maxUserDBSize = 16 << 20

// readInRoot reads the file at name (an in-container path) of the rootfs,
// resolving every component as the container would see it: absolute
// symlinks and ".." stay inside rootfs (openat2 RESOLVE_IN_ROOT), so a
// hostile image cannot make hull read a host file. It returns (nil, nil)
// when the file does not exist. Only regular files are read: a FIFO would
// block, a device could have side effects on open.
func readInRoot(rootfs, name string) ([]byte, error) {
	dir, err := os.Open(rootfs)
	if err != nil {
		return nil, fmt.Errorf("opening the rootfs: %w", err)
	}
	defer dir.Close()

	// O_PATH: nothing is opened for reading until we know it is a regular
	// file.
	fd, err := unix.Openat2(int(dir.Fd()), strings.TrimPrefix(name, "/"), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOSYS) {
		fd, err = openInRootFallback(rootfs, name)
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	pathFile := os.NewFile(uintptr(fd), name)
	defer pathFile.Close()

	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	// Reopen the O_PATH descriptor through procfs: it names the inode we
	// checked, whatever happens to the path meanwhile.
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("reopening %s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUserDBSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxUserDBSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxUserDBSize)
	}
	return data, nil
}

// openInRootFallback is for kernels without openat2 (before 5.6): resolve
// the path in the root with securejoin, then open it without following a
// final symlink. A rename race could still move a component; the rootfs is
// not in use by any container while Generate runs.
func openInRootFallback(rootfs, name string) (int, error) {
	p, err := securejoin.SecureJoin(rootfs, name)
	if err != nil {
		return -1, err
	}
	return unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// execUser is the resolved identity of the container's process.
type execUser struct {
	uid, gid uint32
	gids     []uint32 // additional groups
	home     string
}

// resolveUser resolves spec ("", "uid", "uid:gid", "name", "name:group",
// ...) against the rootfs's /etc/passwd and /etc/group, as Docker does:
// numeric ids need no entry; a name must have one; the additional groups
// are those that list the user in /etc/group (only when no group is given),
// then groupAdd. what names the source of spec for errors ("--user" or
// "image config User").
func resolveUser(rootfs, spec, what string, groupAdd []string) (*execUser, error) {
	passwd, err := readInRoot(rootfs, "/etc/passwd")
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, spec, err)
	}
	group, err := readInRoot(rootfs, "/etc/group")
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, spec, err)
	}
	reader := func(b []byte) io.Reader {
		if b == nil {
			return nil // moby/sys/user: no file, so only numeric ids resolve
		}
		return bytes.NewReader(b)
	}
	eu, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, reader(passwd), reader(group))
	if err != nil {
		name, grp, _ := strings.Cut(spec, ":")
		switch {
		case errors.Is(err, user.ErrNoPasswdEntries):
			return nil, fmt.Errorf("%s %q: no user %q in the container's /etc/passwd%s", what, spec, name, missing(passwd))
		case errors.Is(err, user.ErrNoGroupEntries):
			return nil, fmt.Errorf("%s %q: no group %q in the container's /etc/group%s", what, spec, grp, missing(group))
		case errors.Is(err, user.ErrRange):
			return nil, fmt.Errorf("%s %q: user or group id out of range", what, spec)
		}
		return nil, fmt.Errorf("%s %q: %w", what, spec, err)
	}
	if eu.Uid < 0 || eu.Gid < 0 {
		return nil, fmt.Errorf("%s %q: negative user or group id", what, spec)
	}
	if eu.Home == "" {
		eu.Home = "/"
	}
	out := &execUser{uid: uint32(eu.Uid), gid: uint32(eu.Gid), home: eu.Home}
	seen := map[int]bool{}
	add := func(g int) {
		if !seen[g] {
			seen[g] = true
			out.gids = append(out.gids, uint32(g))
		}
	}
	for _, g := range eu.Sgids {
		add(g)
	}
	if len(groupAdd) > 0 {
		extra, err := user.GetAdditionalGroups(groupAdd, reader(group))
		if err != nil {
			if errors.Is(err, user.ErrNoGroupEntries) {
				return nil, fmt.Errorf("--group-add %s: %w in the container's /etc/group%s", strings.Join(groupAdd, ","), err, missing(group))
			}
			return nil, fmt.Errorf("--group-add %s: %w", strings.Join(groupAdd, ","), err)
		}
		// GetAdditionalGroups returns a map's keys: keep the user's order.
		for _, name := range groupAdd {
			for _, g := range extra {
				if groupMatches(name, g, group) {
					add(g)
				}
			}
		}
		for _, g := range extra {
			add(g)
		}
	}
	return out, nil
}

// groupMatches reports whether the --group-add value name resolves to gid.
func groupMatches(name string, gid int, groupFile []byte) bool {
	if n, err := strconv.Atoi(name); err == nil {
		return n == gid
	}
	if groupFile == nil {
		return false
	}
	groups, _ := user.ParseGroupFilter(bytes.NewReader(groupFile), func(g user.Group) bool { return g.Name == name })
	return len(groups) > 0 && groups[0].Gid == gid
}

// missing explains an empty lookup when the file itself is absent.
func missing(file []byte) string {
	if file == nil {
		return " (the file does not exist)"
	}
	return ""
}
