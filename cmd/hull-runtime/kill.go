package main

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func cmdKill(g *globals, args []string) error {
	fs := newFlags("kill")
	all := false
	fs.BoolVar(&all, "all", false, "signal every process of the container")
	fs.BoolVar(&all, "a", false, "signal every process of the container")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("kill", pos, 1)
	if err != nil {
		return err
	}
	sig := unix.SIGTERM
	if len(pos) > 1 {
		if sig, err = parseSignal(pos[1]); err != nil {
			return err
		}
	}
	return g.runtime().Kill(id, sig, all)
}

// parseSignal accepts "KILL", "SIGKILL", "sigkill" and "9".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN") || strings.HasPrefix(name, "SIGRTMAX") {
		base, off := 34, name[len("SIGRTMIN"):]
		if strings.HasPrefix(name, "SIGRTMAX") {
			base = 64
		}
		n := 0
		if off != "" {
			v, err := strconv.Atoi(off)
			if err != nil {
				return 0, fmt.Errorf("unknown signal %q", s)
			}
			n = v
		}
		if sig := base + n; sig >= 34 && sig <= 64 {
			return unix.Signal(sig), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
