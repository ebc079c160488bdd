package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The usage is the documentation: every option is in it.
func TestUsageListsEveryOption(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	o := &options{}
	for _, f := range o.flags() {
		if !strings.Contains(out.String(), "--"+f.Name) || f.Usage == "" {
			t.Errorf("usage lacks --%s", f.Name)
		}
	}
	for _, want := range []string{"--sync-fd", "--restart", "--health-cmd", "exit.json", "SIGTERM"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

// A bad command line fails with status 2 and is reported on the sync fd as
// the caller expects: one JSON line with "error".
func TestBadArgsReportedOnSyncFd(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fd := int(w.Fd())
	var stderr bytes.Buffer
	code := run([]string{"--id", "x", "--restart", "sometimes", "--sync-fd", strconv.Itoa(fd)}, &stderr)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	w.Close() // run closed the fd; this only drops the *os.File
	line, _ := io.ReadAll(r)
	var msg struct{ Error string }
	if err := json.Unmarshal(line, &msg); err != nil || !strings.Contains(msg.Error, "sometimes") || !strings.Contains(msg.Error, "--bundle is required") {
		t.Errorf("sync message %q (%v)", line, err)
	}
	if !strings.Contains(stderr.String(), "sometimes") {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestUnexpectedArguments(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"--id", "x", "--bundle", "/b", "--runtime", "runc", "--state-dir", "/s", "extra"}, &stderr); code != 2 {
		t.Errorf("exit %d, want 2 (%s)", code, stderr.String())
	}
}
