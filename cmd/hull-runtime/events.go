package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/runtime/container"
)

// cmdEvents is `events [--stats] [--interval 5s] ID`: runc's JSON event
// stream, one object per line. With --stats it prints the statistics once;
// otherwise a "stats" event every interval and an "oom" event whenever the
// OOM killer hits the container, until the container stops.
func cmdEvents(g *globals, args []string) error {
	debug.SetGCPercent(100) // a stream can run for days
	fs := newFlags("events")
	interval := 5 * time.Second
	statsOnly := false
	fs.DurationVar(&interval, "interval", interval, "how often to print statistics")
	fs.BoolVar(&statsOnly, "stats", false, "print the container's statistics once and exit")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("events", pos, 0)
	if err != nil {
		return err
	}
	if interval <= 0 {
		return fmt.Errorf("events --interval %s: duration interval must be greater than 0", interval)
	}
	rt := g.runtime()
	enc := json.NewEncoder(os.Stdout)
	if statsOnly {
		s, err := rt.Stats(id)
		if err != nil {
			return err
		}
		return enc.Encode(&container.Event{Type: "stats", ID: id, Data: s})
	}
	// SIGINT/SIGTERM end the stream cleanly (exit 0), after a complete line.
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	return rt.Events(ctx, id, interval, func(e *container.Event) error { return enc.Encode(e) })
}
