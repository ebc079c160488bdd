// Package initproc is what runs inside the new namespaces: it builds the rootfs,
// mounts, devices and console, waits on the exec fifo, then drops privileges and
// execs the container process. The parent side lives in package container; the
// two talk over a socketpair with the JSON messages defined here.
package initproc

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Environment variables the parent sets for the init re-exec; each holds an fd number.
const (
	EnvSyncFd    = "_HULL_SYNC_FD"
	EnvFifoFd    = "_HULL_FIFO_FD"
	EnvConsoleFd = "_HULL_CONSOLE_FD"
	EnvLogLevel  = "_HULL_LOG_LEVEL"
	// EnvDieWithParent makes the init die with `create` (parent-death signal)
	// until MsgCreated.
	EnvDieWithParent = "_HULL_DIE_WITH_PARENT"
	// EnvSeccompFd is a connection to linux.seccomp.listenerPath, made by the
	// parent (the path is on the host), that receives the notify fd.
	EnvSeccompFd = "_HULL_SECCOMP_FD"
	// EnvUsernsHolder makes `hull-runtime init` only wait to be killed: the
	// parent uses it to hold a new user namespace open.
	EnvUsernsHolder = "_HULL_USERNS_HOLDER"
	// EnvMemoryTasks is an fd: the "tasks" file of the container's cgroup in
	// the v1 memory hierarchy, opened by the parent, that the init writes "0"
	// into (see joinMemoryCgroup).
	EnvMemoryTasks = "_HULL_MEMORY_TASKS"
)

// Config is everything the init needs, sent by the parent as the first message.
type Config struct {
	ID           string      `json:"id"`
	Bundle       string      `json:"bundle"`
	Rootfs       string      `json:"rootfs"`
	Spec         *specs.Spec `json:"spec"`
	NoPivot      bool        `json:"no_pivot,omitempty"`
	NoNewKeyring bool        `json:"no_new_keyring,omitempty"`
	PreserveFds  int         `json:"preserve_fds,omitempty"`
	// CgroupPaths are the container's cgroup dirs on the host (subsystem -> dir,
	// "" for the v2 unified dir), used for cgroup mounts without a cgroup namespace.
	CgroupPaths map[string]string `json:"cgroup_paths,omitempty"`
	// NewCgroupNS asks the init to unshare a cgroup namespace once it is in its cgroup.
	NewCgroupNS bool `json:"new_cgroupns,omitempty"`
	// SeccompBPF is linux.seccomp compiled by the parent (seccomp.Program's
	// MarshalBinary), so the init does not compile it.
	SeccompBPF []byte `json:"seccomp_bpf,omitempty"`
	// MountFds maps the index of a mount to an fd (in the init) of a detached
	// mount the parent prepared: idmapped binds.
	MountFds map[int]int `json:"mount_fds,omitempty"`
	// NoMountNS: the container shares the runtime's mount namespace; no mounts,
	// only a chroot into the rootfs.
	NoMountNS bool `json:"no_mountns,omitempty"`
	// InUserNS tells the init that it cannot mknod and must bind host devices.
	InUserNS bool `json:"in_userns,omitempty"`
}

// StartFailed prefixes the error an init writes into the exec fifo when it
// fails between `start` and execve (startContainer hooks, user, caps, exec).
const StartFailed = 0x01

// ExecConfig is the first message of an `exec`: the init has already joined the
// container's namespaces (nsenter constructor) and the parent has put it into
// the container's cgroup.
type ExecConfig struct {
	ID          string              `json:"id"`
	Process     *specs.Process      `json:"process"`
	Seccomp     *specs.LinuxSeccomp `json:"seccomp,omitempty"`
	SeccompBPF  []byte              `json:"seccomp_bpf,omitempty"`
	PreserveFds int                 `json:"preserve_fds,omitempty"`
	// State and Pid are sent with the seccomp notify fd: the container's state
	// and the host pid of the exec'd process.
	State *specs.State `json:"state,omitempty"`
	Pid   int          `json:"pid,omitempty"`
}

// Message types.
const (
	MsgExec    = "exec"    // parent -> init: ExecConfig
	MsgConfig  = "config"  // parent -> init: Config
	MsgGo      = "go"      // parent -> init: in the cgroups now, start the setup
	MsgHooks   = "hooks"   // init -> parent: run prestart and createRuntime hooks now
	MsgHooksOK = "hooksok" // parent -> init: done; State holds the state for createContainer hooks
	MsgReady   = "ready"   // init -> parent: fully set up, about to wait on the exec fifo
	MsgCreated = "created" // parent -> init: state saved; outlive the parent from now on
	// MsgStart is MsgCreated for `run`: the parent has recorded the container
	// as started; exec now instead of waiting on the exec fifo, and report a
	// failure on the sync socket (close-on-exec: EOF means the exec happened).
	MsgStart = "start"
	MsgError = "error" // init -> parent: setup failed; Error says why
)

// Message is one message on the sync socket.
type Message struct {
	Type   string       `json:"type"`
	Config *Config      `json:"config,omitempty"`
	Exec   *ExecConfig  `json:"exec,omitempty"`
	State  *specs.State `json:"state,omitempty"`
	Error  string       `json:"error,omitempty"`
}
