package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Each scenario runs its warm-up rounds first, then its measured rounds; a
// round runs every runtime once, in an order that rotates from round to
// round, so machine noise spreads over all of them.

func (b *bench) progress(title string, round, total int) {
	switch {
	case b.cfg.quiet:
	case b.tty:
		fmt.Fprintf(os.Stderr, "\rbench: %-28s %3d/%d  (%s)   ", title, round, total, time.Since(b.start).Round(time.Second))
		if round == total {
			fmt.Fprintln(os.Stderr)
		}
	case round == total:
		fmt.Fprintf(os.Stderr, "bench: %-28s done (%s)\n", title, time.Since(b.start).Round(time.Second))
	}
}

// scenarioRun: sequential `run` of /bin/true, wall and CPU (the run process
// and everything it waited for, which includes the container).
func (b *bench) scenarioRun() error {
	total := b.cfg.warmup + b.cfg.runs
	for i := 0; i < total; i++ {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		b.progress("run /bin/true", i+1, total)
		for _, r := range rotate(b.rts, i) {
			id := fmt.Sprintf("run-%d", i)
			dir, _, err := b.bundle(r, id, "true")
			if err != nil {
				return err
			}
			b.track(r, id, true)
			e, wall, err := b.invoke(r, "run", "--bundle", dir, id)
			if err != nil {
				return err
			}
			b.track(r, id, false)
			_ = os.RemoveAll(dir)
			if i >= b.cfg.warmup {
				b.record("run", r, wall, e.cpu(), true)
			}
		}
	}
	return nil
}

// scenarioLifecycle: create, start, wait until the container's process has
// exited, delete. The total is the sum of the four phases (the bench's own
// bookkeeping between them is not counted). CPU adds the three runtime
// processes and the container's process, which this process reaps as a
// child subreaper (for runc that includes `runc init`).
func (b *bench) scenarioLifecycle() error {
	total := b.cfg.warmup + b.cfg.runs
	for i := 0; i < total; i++ {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		b.progress("create+start+wait+delete", i+1, total)
		for _, r := range rotate(b.rts, i) {
			id := fmt.Sprintf("life-%d", i)
			dir, _, err := b.bundle(r, id, "true")
			if err != nil {
				return err
			}
			pid, ce, cw, err := b.create(r, id, dir)
			if err != nil {
				return err
			}
			w := b.watch(pid)
			se, sw, err := b.invoke(r, "start", id)
			if err != nil {
				return err
			}
			at, pe, err := b.wait(w, b.cfg.timeout)
			if err != nil {
				return fmt.Errorf("%s: container %s: %w", r.Name, id, err)
			}
			waited := at.Sub(se.at)
			if waited < 0 {
				waited = 0
			}
			de, dw, err := b.remove(r, id, false)
			if err != nil {
				return err
			}
			if i < b.cfg.warmup {
				continue
			}
			cpu := ce.cpu() + se.cpu() + de.cpu()
			if pe != nil {
				cpu += pe.cpu()
			} else {
				b.note("%s: the container's process was not reparented to the bench; its CPU is not counted", r.Name)
			}
			b.record("lifecycle", r, cw+sw+waited+dw, cpu, pe != nil)
			b.record("lifecycle/create", r, cw, ce.cpu(), true)
			b.record("lifecycle/start", r, sw, se.cpu(), true)
			b.record("lifecycle/delete", r, dw, de.cpu(), true)
		}
	}
	return nil
}

// scenarioExec: `exec` of /bin/true into one running container per runtime.
func (b *bench) scenarioExec() (err error) {
	const id = "exec"
	waiters := map[*runtimeInfo]*procWaiter{}
	defer func() {
		for r, w := range waiters {
			if _, _, derr := b.remove(r, id, true); derr != nil && err == nil {
				err = derr
			}
			if _, _, werr := b.wait(w, 10*time.Second); werr != nil && err == nil {
				err = werr
			}
		}
	}()
	for _, r := range b.rts {
		dir, _, err := b.bundle(r, id, "sleep", "3600")
		if err != nil {
			return err
		}
		b.track(r, id, true)
		pidFile := filepath.Join(dir, "pid")
		if _, _, err := b.invoke(r, "run", "--detach", "--bundle", dir, "--pid-file", pidFile, id); err != nil {
			return err
		}
		pid, err := readPid(pidFile)
		if err != nil {
			return err
		}
		waiters[r] = b.watch(pid)
	}
	total := b.cfg.warmup + b.cfg.runs
	for i := 0; i < total; i++ {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		b.progress("exec /bin/true", i+1, total)
		for _, r := range rotate(b.rts, i) {
			e, wall, err := b.invoke(r, "exec", id, "true")
			if err != nil {
				return err
			}
			if i >= b.cfg.warmup {
				b.record("exec", r, wall, e.cpu(), true)
			}
		}
	}
	return nil
}

// scenarioParallel: batches of n `run -d` of `sleep 30` started at once
// (wall for the whole batch), then the batch deleted at once with
// `delete --force` (timed separately). One warm-up batch of the first size.
func (b *bench) scenarioParallel() error {
	for si, n := range b.cfg.par {
		first := 0
		if si == 0 && b.cfg.warmup > 0 {
			first = -1
		}
		title := fmt.Sprintf("%d in parallel", n)
		for round := first; round < b.cfg.parRuns; round++ {
			if err := b.ctx.Err(); err != nil {
				return err
			}
			b.progress(title, round+1, b.cfg.parRuns)
			for _, r := range rotate(b.rts, round) {
				if err := b.batch(r, n, round); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (b *bench) batch(r *runtimeInfo, n, round int) error {
	ids := make([]string, n)
	dirs := make([]string, n)
	for k := range ids {
		ids[k] = fmt.Sprintf("par%d-%d-%d", n, round+1, k)
		dir, _, err := b.bundle(r, ids[k], "sleep", "30")
		if err != nil {
			return err
		}
		dirs[k] = dir
		b.track(r, ids[k], true)
	}
	type result struct {
		e   exit
		err error
	}
	each := func(f func(k int) (exit, error)) ([]result, time.Duration) {
		out := make([]result, n)
		var wg sync.WaitGroup
		t0 := time.Now()
		for k := range ids {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				e, err := f(k)
				out[k] = result{e, err}
			}(k)
		}
		wg.Wait()
		return out, time.Since(t0)
	}

	started, startWall := each(func(k int) (exit, error) {
		e, _, err := b.invoke(r, "run", "--detach", "--bundle", dirs[k], "--pid-file", filepath.Join(dirs[k], "pid"), ids[k])
		return e, err
	})
	var errs []error
	var startCPU time.Duration
	var waiters []*procWaiter
	for k, s := range started {
		if s.err != nil {
			errs = append(errs, s.err)
			continue
		}
		startCPU += s.e.cpu()
		pid, err := readPid(filepath.Join(dirs[k], "pid"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		waiters = append(waiters, b.watch(pid))
	}

	deleted, deleteWall := each(func(k int) (exit, error) {
		e, _, err := b.remove(r, ids[k], true)
		return e, err
	})
	var deleteCPU time.Duration
	for _, d := range deleted {
		if d.err != nil {
			errs = append(errs, d.err)
		}
		deleteCPU += d.e.cpu()
	}
	known := true
	for _, w := range waiters {
		_, pe, err := b.wait(w, b.cfg.timeout)
		switch {
		case err != nil:
			errs = append(errs, err)
		case pe == nil:
			known = false
			b.note("%s: a detached container's process was not reparented to the bench; its CPU is not counted", r.Name)
		default:
			startCPU += pe.cpu()
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if round >= 0 {
		key := fmt.Sprintf("parallel-%d", n)
		b.record(key, r, startWall, startCPU, known)
		b.record(key+"/delete", r, deleteWall, deleteCPU, true)
	}
	return nil
}

// scenarioMemory: create+start `sleep 30` in a known cgroup and read the
// peak memory charged to it (memory.max_usage_in_bytes on v1, memory.peak
// on v2) and the current usage, while it runs; then delete it.
func (b *bench) scenarioMemory() error {
	for i := 0; i < b.cfg.memRuns; i++ {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		b.progress("memory charged at start", i+1, b.cfg.memRuns)
		for _, r := range rotate(b.rts, i) {
			id := fmt.Sprintf("mem-%d", i)
			dir, cg, err := b.bundle(r, id, "sleep", "30")
			if err != nil {
				return err
			}
			peakFile, curFile, err := memoryFiles(cg)
			if err != nil {
				return err
			}
			pid, _, _, err := b.create(r, id, dir)
			if err != nil {
				return err
			}
			w := b.watch(pid)
			if _, _, err := b.invoke(r, "start", id); err != nil {
				return err
			}
			peak, perr := readUint(peakFile)
			cur, cerr := readUint(curFile)
			if _, _, err := b.remove(r, id, true); err != nil {
				return err
			}
			if _, _, err := b.wait(w, b.cfg.timeout); err != nil {
				return err
			}
			if perr != nil || cerr != nil {
				return fmt.Errorf("%s: memory of the container cgroup: %w", r.Name, errors.Join(perr, cerr))
			}
			b.mu.Lock()
			b.mem[r.Name] = append(b.mem[r.Name], memSample{peak: peak, current: cur})
			b.memSource = peakFile
			b.mu.Unlock()
		}
	}
	return nil
}
