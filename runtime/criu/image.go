package criu

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// File names in an image directory besides CRIU's own images.
const (
	// descriptorsFile is runc's: a JSON array with what the init's fds 0,
	// 1 and 2 pointed to ("pipe:[1234]", "/dev/null" ...).
	descriptorsFile = "descriptors.json"
	// metaFile is hull-runtime's: what the dump declared external.
	metaFile = "hull-criu.json"
	// inventoryFile is written by every CRIU dump.
	inventoryFile = "inventory.img"
	dumpLog       = "dump.log"
	restoreLog    = "restore.log"
)

// Kinds of the init's stdio descriptors.
const (
	fdPipe   = "pipe"   // restored from the restoring caller's fd of the same number
	fdFile   = "file"   // a file outside the container (/dev/null, a log file): likewise
	fdTTY    = "tty"    // a terminal outside the container: the new pty, or the caller's fd
	fdSocket = "socket" // left to CRIU (--ext-unix-sk)
	fdInner  = "inner"  // a file of the container itself: CRIU restores it
)

// extFile is one of the init's fds 0-2 and how restore gets it back.
type extFile struct {
	Fd   int    `json:"fd"`
	Link string `json:"link"`
	Kind string `json:"kind"`
	// Key is CRIU's name for the file: given to --external at dump and
	// to --inherit-fd at restore.
	Key string `json:"key,omitempty"`
	// Size of a regular file at the dump: CRIU restores an external file
	// only from a file of the same size.
	Size int64 `json:"size,omitempty"`
	// Regular is set for regular files.
	Regular bool `json:"regular,omitempty"`
}

// extNS is a namespace the container joined by path: not dumped, and
// given back at restore (--inherit-fd with Key, or --join-ns).
type extNS struct {
	Type string `json:"type"`
	Key  string `json:"key,omitempty"`
}

// imageMeta is hull-criu.json.
type imageMeta struct {
	Version     int        `json:"version"`
	ID          string     `json:"id"`
	CriuVersion string     `json:"criuVersion,omitempty"`
	Mounts      []extMount `json:"mounts"`
	Files       []extFile  `json:"files"`
	Namespaces  []extNS    `json:"namespaces,omitempty"`
	// Options that restore must repeat.
	ShellJob       bool `json:"shellJob,omitempty"`
	TCPEstablished bool `json:"tcpEstablished,omitempty"`
	ExtUnixSk      bool `json:"extUnixSk,omitempty"`
	FileLocks      bool `json:"fileLocks,omitempty"`
	Terminal       bool `json:"terminal,omitempty"`
}

const metaVersion = 1

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

// readMeta reads hull-criu.json; nil without error when the image has none
// (e.g. an image made by runc).
func readMeta(dir string) (*imageMeta, error) {
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m imageMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, metaFile), err)
	}
	if m.Version > metaVersion {
		return nil, fmt.Errorf("%s: version %d is newer than this hull-runtime understands (%d)", filepath.Join(dir, metaFile), m.Version, metaVersion)
	}
	return &m, nil
}

// readDescriptors reads runc's descriptors.json (nil if absent).
func readDescriptors(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, descriptorsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var fds []string
	if err := json.Unmarshal(data, &fds); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, descriptorsFile), err)
	}
	return fds, nil
}

// stdioFiles inspects the init's fds 0-2: pipes and sockets are named by
// their inode, files outside the container's mounts (mountIDs) become
// CRIU "external files", terminals "external ttys".
func stdioFiles(pid int, mountIDs map[int]bool) ([]extFile, error) {
	var out []extFile
	for fd := 0; fd < 3; fd++ {
		p := fmt.Sprintf("/proc/%d/fd/%d", pid, fd)
		link, err := os.Readlink(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // closed
			}
			return nil, fmt.Errorf("read fd %d of init %d: %w", fd, pid, err)
		}
		f := extFile{Fd: fd, Link: link}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return nil, fmt.Errorf("stat fd %d of init %d: %w", fd, pid, err)
		}
		switch {
		case strings.HasPrefix(link, "pipe:"):
			f.Kind, f.Key = fdPipe, link
		case strings.HasPrefix(link, "socket:"):
			f.Kind = fdSocket
		case st.Mode&unix.S_IFMT == unix.S_IFCHR && isTTY(st.Rdev):
			f.Kind, f.Key = fdTTY, fmt.Sprintf("tty[%x:%x]", st.Rdev, st.Dev)
		default:
			mnt, err := fdMountID(pid, fd)
			if err != nil {
				return nil, err
			}
			if mountIDs[mnt] {
				f.Kind = fdInner
			} else {
				f.Kind, f.Key = fdFile, fmt.Sprintf("file[%x:%x]", mnt, st.Ino)
				if st.Mode&unix.S_IFMT == unix.S_IFREG {
					f.Regular, f.Size = true, st.Size
				}
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// isTTY reports whether a character device is a terminal: the pty slaves
// (Unix98, majors 136-143), the virtual consoles and serial ports (4), and
// /dev/tty, /dev/console (5:0, 5:1).
func isTTY(rdev uint64) bool {
	major, minor := unix.Major(rdev), unix.Minor(rdev)
	return (major >= 136 && major <= 143) || major == 4 || (major == 5 && minor <= 1)
}

// fdMountID reads mnt_id from /proc/PID/fdinfo/FD.
func fdMountID(pid, fd int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
	if err != nil {
		return 0, fmt.Errorf("read fdinfo %d of init %d: %w", fd, pid, err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "mnt_id:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("fdinfo %d of init %d has no mnt_id", fd, pid)
}
