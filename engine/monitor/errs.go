package monitor

import "strings"

// The monitor's own code paths build errors without fmt: with flag, fmt
// and the reflection it brings cost about 300 KiB of resident text in every
// monitor. The engine-side helpers (Launch, Demux, the attach client, the
// readers) may use fmt: the linker drops them from hull-monitor.

// wrapError is fmt.Errorf("msg: %w", err).
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg + ": " + e.err.Error() }
func (e *wrapError) Unwrap() error { return e.err }

// wrap adds context (the parts, joined) to err.
func wrap(err error, parts ...string) error {
	return &wrapError{msg: strings.Join(parts, ""), err: err}
}

// msgError is an error with a message built by concatenation.
type msgError string

func (e msgError) Error() string { return string(e) }

// errorOf joins parts into an error.
func errorOf(parts ...string) error { return msgError(strings.Join(parts, "")) }
