package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files the monitor keeps in the container's state dir (Config.StateDir).
const (
	// MonitorPidFile holds the monitor's pid, written before anything else.
	MonitorPidFile = "monitor.pid"
	// ContainerPidFile holds the pid of the container's current init (the
	// runtime's --pid-file); it changes on every restart.
	ContainerPidFile = "container.pid"
	// ExitFile is the last exit of the container (ExitStatus as JSON).
	ExitFile = "exit.json"
	// AttachSocket is the attach endpoint (see protocol.go), mode 0600.
	AttachSocket = "attach.sock"
	// HealthFile is the health check state (Health as JSON).
	HealthFile = "health.json"
	// StopFile is the "stopped by user" marker: `hull stop` creates it before
	// killing the container, so the monitor does not restart it and exits.
	// The monitor removes a stale marker when it starts.
	StopFile = "stopped"
	// consoleSocket receives the pty master from the runtime (--tty), only
	// while the runtime's create runs.
	consoleSocket = "console.sock"
	// healthPidFile is the runtime's --pid-file for the running health check,
	// so that a check that times out can be killed inside the container.
	healthPidFile = "health-exec.pid"
)

// ExitStatus is exit.json: how the container's last run ended. It is written
// atomically (temp file, fsync, rename, fsync dir) after every run, once the
// runtime's state has been deleted.
type ExitStatus struct {
	// ExitCode is Docker's: the exit status, or 128+signal if killed.
	ExitCode int `json:"exitCode"`
	// Signal is the signal that killed the init, 0 if it exited.
	Signal int `json:"signal"`
	// OOMKilled: the kernel's OOM killer killed a process of the container's
	// cgroup during the run (memory.events / memory.oom_control oom_kill).
	OOMKilled  bool      `json:"oomKilled"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// Restarts is how many times the monitor had restarted the container
	// before this exit.
	Restarts int `json:"restarts"`
	// Restarting: the restart policy starts the container again; the monitor
	// keeps running. False in the last exit.json a monitor writes.
	Restarting bool `json:"restarting,omitempty"`
	// Error is set when the monitor could not run the container again (a
	// restart whose create failed) or could not follow it.
	Error string `json:"error,omitempty"`
	// LogLinesDropped counts log lines lost to write errors (a full disk) in
	// this monitor's life.
	LogLinesDropped uint64 `json:"logLinesDropped,omitempty"`
}

// Health states, as Docker's.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Health is health.json, rewritten atomically after every check.
type Health struct {
	Status        string         `json:"status"`
	FailingStreak int            `json:"failingStreak"`
	Log           []HealthResult `json:"log"` // the last 5 checks, oldest first
}

// HealthResult is one health check.
type HealthResult struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exitCode"` // -1: timed out or could not run
	Output   string    `json:"output"`   // stdout and stderr, at most 4 KiB
}

// ReadExit reads exit.json from a state dir; the error wraps fs.ErrNotExist
// while the container has not exited yet.
func ReadExit(stateDir string) (*ExitStatus, error) {
	var e ExitStatus
	if err := readJSON(filepath.Join(stateDir, ExitFile), &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// ReadHealth reads health.json from a state dir.
func ReadHealth(stateDir string) (*Health, error) {
	var h Health
	if err := readJSON(filepath.Join(stateDir, HealthFile), &h); err != nil {
		return nil, err
	}
	return &h, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// RequestStop writes the "stopped by user" marker. `hull stop` calls it before
// it kills the container: the monitor then neither restarts the container nor
// waits for anything, it records the exit and ends.
func RequestStop(stateDir string) error {
	if err := os.WriteFile(filepath.Join(stateDir, StopFile), nil, 0o600); err != nil {
		return fmt.Errorf("write stop marker: %w", err)
	}
	return nil
}

// MonitorPid returns the pid in monitor.pid if that process is still the
// monitor of stateDir, or 0 if the monitor is gone.
//
// A monitor killed with SIGKILL leaves its container running (the container
// was reparented to init, not killed) but writes no exit.json: the engine
// detects that case with MonitorPid == 0 and no exit.json, and then reports
// the truth from the runtime's state (running, or stopped with an unknown
// exit code). Pids are reused, so a pid alone proves nothing: the process
// must also be a hull-monitor whose --state-dir is this dir. After this check
// the engine can hold a pidfd (pidfd_open) to the monitor so that later
// checks are free of pid reuse.
func MonitorPid(stateDir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, MonitorPidFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad %s: %q", MonitorPidFile, data)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, nil // gone
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return 0, err
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	for i, a := range args {
		s := string(a)
		if (s == "--state-dir" || s == "-state-dir") && i+1 < len(args) && string(args[i+1]) == abs {
			return pid, nil
		}
		if v, ok := strings.CutPrefix(s, "--state-dir="); ok && v == abs {
			return pid, nil
		}
	}
	return 0, nil
}
