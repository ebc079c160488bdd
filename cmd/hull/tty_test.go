package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDetachReaderStopsAtCtrlPCtrlQAndPassesEverythingElse(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		detach         bool
	}{
		{"plain input", "hello", "hello", false},
		{"the sequence", "ab\x10\x11cd", "ab", true},
		{"ctrl-p then other input", "a\x10b", "a\x10b", false},
		{"ctrl-p ctrl-p ctrl-q", "\x10\x10\x11", "\x10", true},
		{"ctrl-p at the end", "x\x10", "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte per read, as a terminal in raw mode delivers keys.
			detached := false
			r := &detachReader{r: iotest.OneByteReader(strings.NewReader(tc.in)), keys: detachKeys, onDetach: func() { detached = true }}
			got, err := io.ReadAll(r)
			if string(got) != tc.want || detached != tc.detach {
				t.Errorf("read %q (detached %v), want %q (detached %v)", got, detached, tc.want, tc.detach)
			}
			if tc.detach != errors.Is(err, errDetached) {
				t.Errorf("error %v", err)
			}
		})
	}
}
