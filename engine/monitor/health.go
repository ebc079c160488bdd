package monitor

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Health checks follow Docker's rules: the first check runs one interval
// after start; a success makes the container healthy and resets the failing
// streak; a failure adds to the streak, and Retries consecutive failures
// make it unhealthy; failures inside the start period do not count while
// the container has never been healthy. The last 5 results are kept.
const (
	healthLogLen    = 5
	healthOutputMax = 4096
)

func (m *monitor) runHealth(ctx context.Context, started time.Time) {
	h := m.cfg.Health
	m.health.Status = HealthStarting
	m.health.FailingStreak = 0
	m.writeHealth()
	t := time.NewTimer(h.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res := m.probe(ctx)
		if ctx.Err() != nil {
			return // the container exited during the check: not a result
		}
		m.health.Log = append(m.health.Log, res)
		if n := len(m.health.Log); n > healthLogLen {
			m.health.Log = append(m.health.Log[:0], m.health.Log[n-healthLogLen:]...)
		}
		switch {
		case res.ExitCode == 0:
			m.health.Status = HealthHealthy
			m.health.FailingStreak = 0
		case m.health.Status == HealthStarting && res.Start.Sub(started) < h.StartPeriod:
			// Still starting up: does not count.
		default:
			m.health.FailingStreak++
			if m.health.FailingStreak >= h.Retries {
				m.health.Status = HealthUnhealthy
			}
		}
		m.writeHealth()
		t.Reset(h.Interval)
	}
}

func (m *monitor) writeHealth() {
	_ = writeFileAtomic(m.cfg.StateDir, HealthFile, m.health.marshal())
}

// probe runs the check once with the runtime's exec. On timeout it kills the
// checked process itself (found through exec's --pid-file): killing only the
// runtime would leave it running in the container.
func (m *monitor) probe(ctx context.Context) HealthResult {
	h := m.cfg.Health
	res := HealthResult{Start: time.Now(), ExitCode: -1}
	defer func() { res.End = time.Now() }()
	pidFile := filepath.Join(m.cfg.StateDir, healthPidFile)
	os.Remove(pidFile)
	defer os.Remove(pidFile)

	r, w, err := os.Pipe()
	if err != nil {
		res.Output = err.Error()
		return res
	}
	defer r.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		w.Close()
		res.Output = err.Error()
		return res
	}
	args := append([]string{"exec", "--pid-file", pidFile, m.cfg.ID}, h.argv()...)
	rpid, ch, err := m.reaper.start(m.runtimeArgv(args...), m.env, []*os.File{null, w, w}, false)
	null.Close()
	w.Close()
	if err != nil {
		res.Output = "run " + m.cfg.Runtime + ": " + err.Error()
		return res
	}
	outc := make(chan []byte, 1)
	go func() { outc <- readCapped(r, healthOutputMax, time.Time{}) }()

	timer := time.NewTimer(h.Timeout)
	defer timer.Stop()
	var ws unix.WaitStatus
	timedOut := false
	select {
	case ws = <-ch:
	case <-timer.C:
		timedOut = true
	case <-ctx.Done():
		timedOut = true
	}
	if timedOut {
		ws = m.killCheck(rpid, ch, pidFile)
	}
	// A background process of the check may hold the pipe: do not wait
	// for its EOF longer than a moment after the check itself ended.
	_ = r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	out := <-outc
	if timedOut {
		res.Output = "health check exceeded timeout (" + h.Timeout.String() + ")"
		return res
	}
	res.ExitCode, _ = exitCode(ws)
	res.Output = string(out)
	return res
}

// killCheck kills a check that timed out: the checked process first, whose
// pid the runtime writes only once it has started it (under load that can
// be after the timeout, hence the wait), then the runtime.
func (m *monitor) killCheck(rpid int, ch <-chan unix.WaitStatus, pidFile string) unix.WaitStatus {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if pid, err := readPid(pidFile); err == nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			break
		}
		select {
		case ws := <-ch:
			return ws // the runtime ended without starting it
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			break
		}
	}
	_ = unix.Kill(rpid, unix.SIGKILL)
	return <-ch
}
