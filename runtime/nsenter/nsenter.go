// Package nsenter joins existing namespaces before the Go runtime starts.
//
// Go cannot setns(2) into a user or mount namespace once it has threads, so a
// cgo constructor does it, driven by an environment variable that only
// hull-runtime's own init re-exec sets. Importing this package (for its
// side effect) is all that is needed; everything else is done in Go.
package nsenter

/*
#cgo CFLAGS: -Wall -O2
extern void hull_nsenter(void);
void __attribute__((constructor)) hull_nsenter_init(void) { hull_nsenter(); }
*/
import "C"

// EnvJoin names the variable read by the constructor: a comma-separated list of
// namespace files to join in order ("user:/proc/1/ns/user,mnt:/proc/1/ns/mnt").
const EnvJoin = "_HULL_NSENTER"

// EnvUnshare names the variable holding clone flags (decimal) to unshare after
// joining, for new namespaces that must be owned by a joined user namespace.
const EnvUnshare = "_HULL_UNSHARE"

// EnvForkPidFd names the variable holding an fd: when set, the constructor forks
// (CLONE_PARENT) after joining, writes the child's pid to that fd and exits;
// the child goes on to run Go.
const EnvForkPidFd = "_HULL_FORK_PIDFD"

// EnvUsernsSync names the variable holding a socket fd: when set, the
// constructor unshares a user namespace, writes 'U', waits for 'M' (the parent
// has written the id maps) and becomes root in it, before EnvUnshare.
const EnvUsernsSync = "_HULL_USERNS_SYNC"

// EnvTimeOffsets names the variable that asks the constructor for a new time
// namespace (after the other unshares) with these timens_offsets lines (may be
// empty); the fork of EnvForkPidFd then puts the real process into it.
const EnvTimeOffsets = "_HULL_TIMENS_OFFSETS"

// EnvCgroupTasks names the variable holding a comma-separated list of fds:
// cgroup v1 "tasks" files the constructor writes "0" into before anything
// else, joining those cgroups while the process has a single thread, so as a
// whole (see cgroups.Manager.TaskFiles). It closes them.
const EnvCgroupTasks = "_HULL_CGROUP_TASKS"
