// Package monitor is hull's per-container monitor (what conmon is to
// Podman): one small, long-lived process per container, started by the
// daemonless hull CLI, that holds the container's stdio, writes its logs,
// records its exit status and applies its restart policy. The binary is
// cmd/hull-monitor; the engine uses this package to start it (Launch),
// attach to it (Attach, Resize), and read what it recorded (ReadExit,
// ReadHealth, MonitorPid).
//
// # Lifecycle
//
// The monitor becomes a child subreaper, then runs the OCI runtime's create
// (hull-runtime, runc or crun: the same CLI) with pipes as the container's
// stdio, or with --console-socket to receive the pty master for a tty
// container, and the runtime's start. The container's init, left behind by
// create, is reparented to the monitor, which reaps it (wait4) and so learns
// its exit status first hand. Then the monitor checks the memory cgroup's
// oom_kill counter, deletes the runtime state, writes exit.json atomically,
// and either exits or restarts the container (restart policy, with Docker's
// backoff: 100 ms doubling to 1 min, reset after 10 s of uptime).
//
// `hull stop` writes the StopFile marker and kills the container; the
// monitor then records the exit and ends without restarting. The monitor
// itself catches and drops SIGTERM, SIGINT and SIGHUP: it is never the way
// to stop a container.
//
// # Failure cases
//
//   - The runtime fails at create: its stderr is reported through the sync
//     fd, its state is deleted, the monitor exits non-zero.
//   - The log disk is full: the monitor keeps running, drops log lines
//     and counts them (ExitStatus.LogLinesDropped).
//   - The monitor is killed with SIGKILL: the container keeps running,
//     reparented to init. No exit.json is ever written for that run; the
//     engine detects the dead monitor with MonitorPid (pid plus command
//     line, robust against pid reuse; then a pidfd) and reports the truth
//     from the runtime's state. The container's next write to a pipe whose
//     reader is gone gets EPIPE (SIGPIPE), as with conmon.
//
// # Memory
//
// Every running container has a monitor, so it must stay small (conmon is
// about 1 MiB resident). The package therefore avoids net, os/exec,
// encoding/json's encoder and log/slog in the monitor's code paths (each
// adds hundreds of KiB of text, and on a file system with large folios the
// whole binary tends to be resident), and hull-monitor runs with
// GOMAXPROCS=1, a low GOGC and a soft memory limit.
package monitor
