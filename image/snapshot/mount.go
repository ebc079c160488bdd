package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

const (
	// defaultBusyTries is how often UnmountAll retries an unmount that fails
	// with EBUSY (about 2.5 s with the backoff) before it detaches the mount.
	defaultBusyTries = 30
	// maxStacked bounds UnmountAll's loop over mounts stacked on one target.
	maxStacked = 1000
	// probeKey is an option no filesystem has: a filesystem context that
	// accepts it is the kernel's "legacy" one (see mountOverlayFS).
	probeKey = "hull-probe-legacy-context"
	// fsconfigMax is the length from which fsconfig refuses a string value
	// (the kernel copies at most 255 bytes and a NUL); mount(2) takes such a
	// path in its page of options.
	fsconfigMax = 256
)

// MountAll mounts mounts on target in order, each on top of the ones before
// it, the way a snapshotter's Mounts describe a tree. If one fails, the ones
// already mounted are unmounted.
//
// Overlay mounts use the new mount API (fsopen, one fsconfig per option,
// fsmount, move_mount) where the kernel takes overlay's layers one at a time
// ("lowerdir+", Linux ≥ 6.8): no string then holds the whole layer list, so
// the one-page limit of mount(2)'s options does not apply. Older kernels get
// mount(2); if the options are longer than a page, the paths are made
// relative to their longest common directory and mount(2) runs in a thread
// whose working directory is that directory (a thread with its own fs_struct,
// so the process's working directory never changes). Bind mounts use
// open_tree and mount_setattr, so a read-only rbind is read-only from the
// start and in every submount; mount(2) and a remount where those calls are
// missing.
func MountAll(mounts []Mount, target string) error {
	return mountAll(mounts, target, true)
}

// mountAll is MountAll; newAPI false forces the mount(2) paths (tests use it
// to cover older kernels' path on a new one).
func mountAll(mounts []Mount, target string, newAPI bool) error {
	abs, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("mount on %s: %w", target, err)
	}
	for i, m := range mounts {
		err := mountOne(m, abs, newAPI)
		if err == nil {
			continue
		}
		err = fmt.Errorf("mount %s %s on %s: %w", m.Type, m.Source, abs, err)
		var undo []error
		for range i {
			if uerr := detach(abs); uerr != nil {
				undo = append(undo, uerr)
			}
		}
		if uerr := errors.Join(undo...); uerr != nil {
			err = fmt.Errorf("%w (undoing the mounts before it: %v)", err, uerr)
		}
		return err
	}
	return nil
}

// UnmountAll unmounts everything mounted on target, top first, until target
// is no longer a mount point. Mounts under target (the submounts an rbind
// brings along) are unmounted first, deepest first, since they keep the
// mount above them busy. An unmount that fails with EBUSY is retried for a
// few seconds and then, as a last resort, detached (MNT_DETACH): the mount
// leaves the tree at once and the kernel frees it when its last user goes. A
// target that is not mounted, or does not exist, is not an error.
func UnmountAll(target string) error {
	return unmountAll(target, defaultBusyTries)
}

func unmountAll(target string, busyTries int) error {
	for range maxStacked {
		err := unmount(target, 0)
		switch {
		case err == nil:
			continue
		case notMounted(err):
			return nil
		case err != unix.EBUSY:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		subs, err := submounts(target)
		if err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		for _, sub := range subs {
			if err := unmountOne(sub, busyTries); err != nil && !notMounted(err) {
				return fmt.Errorf("unmount %s: %w", sub, err)
			}
		}
		if len(subs) == 0 {
			// Busy with open files, not submounts: wait, then detach.
			if err := unmountOne(target, busyTries); err != nil && !notMounted(err) {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
		}
	}
	return fmt.Errorf("unmount %s: still a mount point after %d unmounts", target, maxStacked)
}

// notMounted reports an unmount error that means there is nothing (left) to
// unmount.
func notMounted(err error) bool {
	return err == unix.EINVAL || err == unix.ENOENT
}

func unmount(target string, flags int) error {
	for {
		err := unix.Unmount(target, flags|unix.UMOUNT_NOFOLLOW)
		if err != unix.EINTR {
			return err
		}
	}
}

// unmountOne unmounts the top mount on target, retrying while it is busy and
// detaching it at the end.
func unmountOne(target string, busyTries int) error {
	delay := 10 * time.Millisecond
	for range busyTries {
		if err := unmount(target, 0); err != unix.EBUSY {
			return err
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
	return unmount(target, unix.MNT_DETACH)
}

// submounts lists the mount points strictly under target, deepest first.
func submounts(target string) ([]string, error) {
	abs, err := filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	// mountinfo shows paths with symlinks resolved.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	prefix := strings.TrimSuffix(abs, "/") + "/"
	ms, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return !strings.HasPrefix(m.Mountpoint, prefix), false
	})
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(ms))
	for i, m := range ms {
		paths[i] = m.Mountpoint
	}
	slices.SortStableFunc(paths, func(a, b string) int {
		return strings.Count(b, "/") - strings.Count(a, "/")
	})
	return paths, nil
}

// detach undoes a mount that MountAll has just made and nobody uses yet:
// MNT_DETACH takes its submounts with it.
func detach(target string) error {
	return unmount(target, unix.MNT_DETACH)
}

// options is a Mount's option list sorted into what each syscall takes.
type options struct {
	flags       uintptr  // MS_* for mount(2)
	attrs       uint64   // MOUNT_ATTR_* for fsmount and mount_setattr
	atime       bool     // attrs sets an atime mode (MOUNT_ATTR__ATIME must be cleared)
	sbFlags     []string // superblock flags for fsconfig
	propagation uintptr  // MS_SHARED etc., applied after the mount
	bind        bool
	recursive   bool
	data        []string // the filesystem's own options
}

func parseOptions(opts []string) options {
	var o options
	setAtime := func(flag uintptr, attr uint64) {
		o.flags = o.flags&^(unix.MS_NOATIME|unix.MS_RELATIME|unix.MS_STRICTATIME) | flag
		o.attrs = o.attrs&^unix.MOUNT_ATTR__ATIME | attr
		o.atime = true
	}
	for _, opt := range opts {
		switch opt {
		case "defaults", "rw":
			o.flags &^= unix.MS_RDONLY
			o.attrs &^= unix.MOUNT_ATTR_RDONLY
		case "ro":
			o.flags |= unix.MS_RDONLY
			o.attrs |= unix.MOUNT_ATTR_RDONLY
		case "bind":
			o.bind = true
		case "rbind":
			o.bind, o.recursive = true, true
		case "nosuid":
			o.flags |= unix.MS_NOSUID
			o.attrs |= unix.MOUNT_ATTR_NOSUID
		case "suid":
			o.flags &^= unix.MS_NOSUID
			o.attrs &^= unix.MOUNT_ATTR_NOSUID
		case "nodev":
			o.flags |= unix.MS_NODEV
			o.attrs |= unix.MOUNT_ATTR_NODEV
		case "dev":
			o.flags &^= unix.MS_NODEV
			o.attrs &^= unix.MOUNT_ATTR_NODEV
		case "noexec":
			o.flags |= unix.MS_NOEXEC
			o.attrs |= unix.MOUNT_ATTR_NOEXEC
		case "exec":
			o.flags &^= unix.MS_NOEXEC
			o.attrs &^= unix.MOUNT_ATTR_NOEXEC
		case "noatime":
			setAtime(unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME)
		case "relatime":
			setAtime(unix.MS_RELATIME, unix.MOUNT_ATTR_RELATIME)
		case "strictatime":
			setAtime(unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME)
		case "nodiratime":
			o.flags |= unix.MS_NODIRATIME
			o.attrs |= unix.MOUNT_ATTR_NODIRATIME
		case "sync":
			o.flags |= unix.MS_SYNCHRONOUS
			o.sbFlags = append(o.sbFlags, opt)
		case "dirsync":
			o.flags |= unix.MS_DIRSYNC
			o.sbFlags = append(o.sbFlags, opt)
		case "lazytime":
			o.flags |= unix.MS_LAZYTIME
			o.sbFlags = append(o.sbFlags, opt)
		case "private":
			o.propagation = unix.MS_PRIVATE
		case "rprivate":
			o.propagation = unix.MS_PRIVATE | unix.MS_REC
		case "shared":
			o.propagation = unix.MS_SHARED
		case "rshared":
			o.propagation = unix.MS_SHARED | unix.MS_REC
		case "slave":
			o.propagation = unix.MS_SLAVE
		case "rslave":
			o.propagation = unix.MS_SLAVE | unix.MS_REC
		case "unbindable":
			o.propagation = unix.MS_UNBINDABLE
		case "runbindable":
			o.propagation = unix.MS_UNBINDABLE | unix.MS_REC
		default:
			o.data = append(o.data, opt)
		}
	}
	return o
}

func mountOne(m Mount, target string, newAPI bool) error {
	o := parseOptions(m.Options)
	var err error
	switch {
	case o.bind || m.Type == "bind":
		err = mountBind(m.Source, target, o, newAPI)
	case m.Type == "overlay":
		err = mountOverlay(m, target, o, newAPI)
	default:
		err = unix.Mount(m.Source, target, m.Type, o.flags, strings.Join(o.data, ","))
	}
	if err != nil {
		return err
	}
	if o.propagation != 0 {
		if err := unix.Mount("", target, "", o.propagation, ""); err != nil {
			_ = detach(target)
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

func mountBind(src, target string, o options, newAPI bool) error {
	if newAPI {
		done, err := mountBindTree(src, target, o)
		if done {
			return err
		}
	}
	flags := uintptr(unix.MS_BIND)
	if o.recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(src, target, "", flags, ""); err != nil {
		return err
	}
	// A bind mount ignores every flag but MS_BIND|MS_REC: the others take a
	// remount (which changes only the top mount, not submounts).
	if rest := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC | unix.MS_LAZYTIME); rest != 0 {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
			_ = detach(target)
			return fmt.Errorf("remount bind: %w", err)
		}
	}
	return nil
}

// mountBindTree bind-mounts with open_tree, mount_setattr and move_mount;
// done is false if the kernel lacks them.
func mountBindTree(src, target string, o options) (done bool, err error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if o.recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if err == unix.ENOSYS {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(fd)
	if o.attrs != 0 || o.atime {
		attr := unix.MountAttr{Attr_set: o.attrs}
		if o.atime {
			attr.Attr_clr = unix.MOUNT_ATTR__ATIME
		}
		sflags := uint(unix.AT_EMPTY_PATH)
		if o.recursive {
			sflags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(fd, "", sflags, &attr); err != nil {
			if err == unix.ENOSYS { // 5.2 ≤ Linux < 5.12
				return false, nil
			}
			return true, fmt.Errorf("mount_setattr %s: %w", src, err)
		}
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return true, fmt.Errorf("move_mount: %w", err)
	}
	return true, nil
}

func mountOverlay(m Mount, target string, o options, newAPI bool) error {
	if newAPI {
		done, err := mountOverlayFS(m, target, o)
		if done {
			return err
		}
	}
	return mountOverlayLegacy(m, target, o)
}

// mountOverlayFS mounts an overlay through fsopen/fsconfig/fsmount with one
// "lowerdir+" per layer; done is false if the kernel cannot (then mount(2)
// is the way).
func mountOverlayFS(m Mount, target string, o options) (done bool, err error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err == unix.ENOSYS {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	// Before Linux 6.5 overlayfs had no fs_context of its own: fsopen gives
	// it the "legacy" context, which accepts any key and pastes the options
	// into a one-page mount(2) string, so nothing is gained and lowerdir+
	// would fail only at create. A key that no filesystem has tells it apart:
	// only the legacy context accepts it.
	if err := unix.FsconfigSetFlag(fsfd, probeKey); err == nil {
		return false, nil
	}
	fsLog(fsfd) // drop the probe's "unknown parameter" message
	if m.Source != "" {
		if err := unix.FsconfigSetString(fsfd, "source", m.Source); err != nil {
			return true, fsError(fsfd, "fsconfig source", err)
		}
	}
	firstLayer := true
	for _, opt := range o.data {
		k, v, hasValue := strings.Cut(opt, "=")
		switch {
		case k == "lowerdir" && hasValue:
			for _, l := range splitLowerdir(v) {
				key := "lowerdir+"
				if l.data {
					key = "datadir+"
				}
				// lowerdir+ takes the path as it is: no escapes.
				if err := unix.FsconfigSetString(fsfd, key, l.path); err != nil {
					if err == unix.EINVAL && (firstLayer || len(l.path) >= fsconfigMax) {
						return false, nil // Linux 6.5–6.7: no lowerdir+; or a path fsconfig cannot take
					}
					return true, fsError(fsfd, "fsconfig "+key+" "+l.path, err)
				}
				firstLayer = false
			}
		case hasValue:
			if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
				if err == unix.EINVAL && len(v) >= fsconfigMax {
					return false, nil
				}
				return true, fsError(fsfd, "fsconfig "+opt, err)
			}
		default:
			if err := unix.FsconfigSetFlag(fsfd, k); err != nil {
				return true, fsError(fsfd, "fsconfig "+opt, err)
			}
		}
	}
	sb := o.sbFlags
	if o.flags&unix.MS_RDONLY != 0 {
		sb = append(sb, "ro")
	}
	for _, f := range sb {
		if err := unix.FsconfigSetFlag(fsfd, f); err != nil {
			return true, fsError(fsfd, "fsconfig "+f, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return true, fsError(fsfd, "create overlay", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(o.attrs))
	if err != nil {
		return true, fsError(fsfd, "fsmount", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return true, fmt.Errorf("move_mount: %w", err)
	}
	return true, nil
}

// fsError adds the filesystem context's messages (overlayfs says there
// which layer it did not like) to err.
func fsError(fsfd int, what string, err error) error {
	if msg := fsLog(fsfd); msg != "" {
		return fmt.Errorf("%s: %w (%s)", what, err, msg)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// fsLog reads and drops the messages queued on a filesystem context.
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 32 {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	return strings.Join(msgs, "; ")
}

// mountOverlayLegacy mounts an overlay with mount(2), whose options must fit
// in one page with their terminating NUL.
func mountOverlayLegacy(m Mount, target string, o options) error {
	data := strings.Join(o.data, ",")
	if len(data) < os.Getpagesize() {
		return unix.Mount(m.Source, target, "overlay", o.flags, data)
	}
	dir, short, err := compactOverlayOptions(o.data)
	if err != nil {
		return err
	}
	data = strings.Join(short, ",")
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("overlay options are %d bytes even relative to %s, over mount(2)'s limit of one page (%d bytes; Linux ≥ 6.8 has no such limit): %w",
			len(data), dir, os.Getpagesize(), unix.E2BIG)
	}
	return inDir(dir, func() error {
		return unix.Mount(m.Source, target, "overlay", o.flags, data)
	})
}

// compactOverlayOptions rewrites the layer paths of overlay options
// (lowerdir, upperdir, workdir) relative to their longest common directory,
// which it returns. A snapshotter's layers are siblings (root/snapshots/<id>/fs),
// so each layer then costs a few bytes.
func compactOverlayOptions(data []string) (string, []string, error) {
	var paths []string
	for _, opt := range data {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "lowerdir":
			for _, l := range splitLowerdir(v) {
				paths = append(paths, l.path)
			}
		case "upperdir", "workdir":
			paths = append(paths, unescape(v))
		}
	}
	if len(paths) == 0 {
		return "", nil, errors.New("overlay options longer than a page, and no layer paths to shorten")
	}
	for i, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", nil, err
		}
		paths[i] = abs
	}
	dir := commonDir(paths)
	rel := func(p string) string {
		abs, _ := filepath.Abs(p) // cannot fail: it did above
		switch {
		case abs == dir:
			return "."
		case dir == "/":
			return abs[1:]
		default:
			return abs[len(dir)+1:]
		}
	}
	out := make([]string, 0, len(data))
	for _, opt := range data {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "lowerdir":
			layers := splitLowerdir(v)
			for i := range layers {
				layers[i].path = rel(layers[i].path)
			}
			out = append(out, "lowerdir="+joinLowerdir(layers))
		case "upperdir", "workdir":
			out = append(out, k+"="+escape(rel(unescape(v))))
		default:
			out = append(out, opt)
		}
	}
	return dir, out, nil
}

// commonDir returns the deepest directory that holds every path in paths
// (absolute and clean).
func commonDir(paths []string) string {
	dir := filepath.Dir(paths[0])
	for _, p := range paths[1:] {
		for dir != "/" && p != dir && !strings.HasPrefix(p, dir+"/") {
			dir = filepath.Dir(dir)
		}
	}
	return dir
}

// inDir runs fn on a thread whose working directory is dir. The thread
// unshares its fs_struct first, so the chdir is its own; it stays locked and
// so ends with the goroutine instead of going back to Go's pool.
func inDir(dir string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare CLONE_FS: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("chdir %s: %w", dir, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// layer is one entry of overlay's lowerdir list.
type layer struct {
	path string
	data bool // a data-only layer (after "::")
}

// splitLowerdir splits overlay's lowerdir value at unescaped colons and
// removes the backslash escapes; the layers after a "::" are data-only.
func splitLowerdir(v string) []layer {
	var out []layer
	var cur strings.Builder
	data := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && i+1 < len(v):
			i++
			cur.WriteByte(v[i])
		case c == ':':
			if cur.Len() == 0 && len(out) > 0 {
				data = true
				continue
			}
			out = append(out, layer{cur.String(), data})
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, layer{cur.String(), data})
	}
	return out
}

// joinLowerdir is the inverse of splitLowerdir.
func joinLowerdir(layers []layer) string {
	var b strings.Builder
	for i, l := range layers {
		if i > 0 {
			b.WriteByte(':')
			if l.data && !layers[i-1].data {
				b.WriteByte(':')
			}
		}
		b.WriteString(escape(l.path))
	}
	return b.String()
}

// escape backslash-escapes the characters overlayfs splits its options and
// layer lists at.
func escape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '\\' || c == ':' || c == ',' {
			b.WriteByte('\\')
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// unescape removes overlayfs's backslash escapes.
func unescape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			i++
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
