package caps

import (
	"errors"
	"fmt"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"
)

// ApplyBounding drops from the calling thread's bounding set every
// capability the config does not list, then sets PR_SET_KEEPCAPS so that
// the permitted set survives the caller's change to a non-zero uid.
//
// Call it on the locked thread that will execve, before changing uid/gid.
// Dropping needs CAP_SETPCAP in the effective set; unlike
// capability.Capabilities.Apply, a missing CAP_SETPCAP is an error here, not
// a silently kept bounding set. Capabilities already absent are not dropped
// again, so a thread whose bounding set is already small enough needs no
// privilege. A nil s does nothing.
func (s *Set) ApplyBounding() error {
	if s == nil {
		return nil
	}
	for c := capability.Cap(0); c <= s.last; c++ {
		if s.bounding.has(c) {
			continue
		}
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			continue // not supported by this kernel after all
		}
		if err != nil {
			return fmt.Errorf("reading %s in the bounding set: %w", capName(c), err)
		}
		if in == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EPERM) {
				return fmt.Errorf("dropping %s from the bounding set (needs CAP_SETPCAP): %w", capName(c), err)
			}
			return fmt.Errorf("dropping %s from the bounding set: %w", capName(c), err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting PR_SET_KEEPCAPS: %w", err)
	}
	return nil
}

// ApplyRest clears PR_SET_KEEPCAPS, then sets the calling thread's
// effective, permitted and inheritable sets (one capset) and after them the
// ambient set, which the kernel only accepts for capabilities that are
// already permitted and inheritable.
//
// Call it on the locked thread that will execve, after ApplyBounding and the
// uid/gid change. The inheritable set becomes exactly the config's (empty by
// default), whatever the runtime's was. A nil s does nothing.
func (s *Set) ApplyRest() error {
	if s == nil {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing PR_SET_KEEPCAPS: %w", err)
	}

	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(s.effective), Permitted: uint32(s.permitted), Inheritable: uint32(s.inheritable)},
		{Effective: uint32(s.effective >> 32), Permitted: uint32(s.permitted >> 32), Inheritable: uint32(s.inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("setting effective/permitted/inheritable capabilities (permitted can only shrink, so the thread must keep them across the uid change; inheritable must stay within the bounding set): %w", err)
		}
		return fmt.Errorf("setting effective/permitted/inheritable capabilities: %w", err)
	}

	err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	if err != nil && (s.ambient != 0 || !errors.Is(err, unix.EINVAL)) {
		// EINVAL: Linux < 4.3 has no ambient set, fine if none is wanted.
		return fmt.Errorf("clearing the ambient set: %w", err)
	}
	for c := capability.Cap(0); c <= s.last; c++ {
		if !s.ambient.has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raising ambient %s: %w", capName(c), err)
		}
	}
	return nil
}
