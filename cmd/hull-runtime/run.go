package main

import (
	"path/filepath"

	"fmt"
	rspec "github.com/hull-runtime/hull/runtime/spec"
)

func cmdRun(g *globals, args []string) error {
	fs := newFlags("run")
	var cf createFlags
	cf.register(fs)
	detach := false
	keep := false
	fs.BoolVar(&detach, "detach", false, "do not wait for the container to exit")
	fs.BoolVar(&detach, "d", false, "do not wait for the container to exit")
	fs.BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("run", pos, 0)
	if err != nil {
		return err
	}
	rt := g.runtime()
	opts := cf.options(id)
	bundle, err := filepath.Abs(cf.bundle)
	if err != nil {
		return err
	}
	// Loaded once here (the terminal decides on the relay) and handed to Create.
	if opts.Spec, err = rspec.Load(bundle); err != nil {
		return err
	}
	var relay *ttyRelay
	if cf.consoleSocket == "" && opts.Spec.Process != nil && opts.Spec.Process.Terminal {
		if detach {
			return fmt.Errorf("run: cannot allocate a terminal for a detached container without --console-socket")
		}
		if relay, err = newTTYRelay(); err != nil {
			return err
		}
		defer relay.close()
		opts.ConsoleSocket = relay.path()
	}
	// Catch the signals we forward. Enabling them takes about a millisecond
	// (a handshake with the runtime's signal thread per signal), so it runs
	// beside the create; waitForwarding waits for it.
	sigc := catchSignals(!detach)
	// Without a relay to hook up in between, create starts the container too.
	opts.StartNow = relay == nil
	init, err := rt.Create(opts)
	if err != nil {
		return err
	}
	if relay != nil {
		if err := relay.start(); err != nil {
			_ = rt.Delete(id, true)
			return err
		}
	}
	if !init.Started {
		if err := rt.Start(id); err != nil {
			_ = rt.Delete(id, true)
			return err
		}
	}
	if detach {
		return init.Process.Release()
	}
	err = waitForwarding(init.Process, sigc, relay)
	if !keep {
		if derr := rt.Delete(id, true); derr != nil {
			g.log.Warn("delete after run", "id", id, "err", derr)
		}
	}
	return err
}
