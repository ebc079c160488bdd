// Package hooks runs runtime-spec lifecycle hooks: the container state as JSON on
// stdin, the hook's args and env, and its timeout.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Run runs each hook in order and stops at the first failure. kind names the
// hook list (e.g. "createRuntime") for error messages.
func Run(kind string, hs []specs.Hook, st *specs.State) error {
	if len(hs) == 0 {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state for %s hooks: %w", kind, err)
	}
	for i, h := range hs {
		if err := runOne(h, data); err != nil {
			return fmt.Errorf("%s hook #%d (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// RunAll runs every hook even if one fails (poststop: the spec says the runtime logs
// the failure and goes on) and returns the failures joined.
func RunAll(kind string, hs []specs.Hook, st *specs.State) error {
	var errs []error
	for i, h := range hs {
		if err := Run(kind, []specs.Hook{h}, st); err != nil {
			errs = append(errs, fmt.Errorf("#%d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func runOne(h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout must be positive, got %d", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	} else {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// A hook that forks a daemon holding stdout must not hang us past its timeout.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}
