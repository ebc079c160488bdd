package monitor

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The hand-written JSON string encoder matches encoding/json byte for byte.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", "line\n", "tab\tcr\r", `quote " backslash \`, "<html>&", "\x00\x01\x1f\x7f",
		"héllo wörld ✓", "bad \xff utf8 \xc3", "sep \u2028 \u2029", strings.Repeat("ab\n", 100),
	} {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, []byte(s)); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s want %s", s, got, want)
		}
	}
}

func TestExitAndHealthRoundTrip(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().Round(0)
	ex := &ExitStatus{ExitCode: 137, Signal: 9, OOMKilled: true, StartedAt: now.Add(-time.Second), FinishedAt: now,
		Restarts: 2, Restarting: true, Error: `bad "thing"`, LogLinesDropped: 5}
	if err := writeFileAtomic(dir, ExitFile, ex.marshal()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadExit(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !got.StartedAt.Equal(ex.StartedAt) || !got.FinishedAt.Equal(ex.FinishedAt) {
		t.Errorf("times %v %v", got.StartedAt, got.FinishedAt)
	}
	got.StartedAt, got.FinishedAt = ex.StartedAt, ex.FinishedAt
	if !reflect.DeepEqual(got, ex) {
		t.Errorf("exit round trip: %+v != %+v", got, ex)
	}
	h := &Health{Status: HealthUnhealthy, FailingStreak: 3, Log: []HealthResult{{Start: now, End: now, ExitCode: 1, Output: "no\n"}}}
	if err := writeFileAtomic(dir, HealthFile, h.marshal()); err != nil {
		t.Fatal(err)
	}
	gh, err := ReadHealth(dir)
	if err != nil || gh.Status != h.Status || gh.FailingStreak != 3 || len(gh.Log) != 1 || gh.Log[0].Output != "no\n" || gh.Log[0].ExitCode != 1 {
		t.Errorf("health round trip: %+v, %v", gh, err)
	}
	var msg struct {
		Pid   int
		Error string
	}
	if err := json.Unmarshal(syncMessage(42, nil), &msg); err != nil || msg.Pid != 42 {
		t.Errorf("sync message: %+v %v", msg, err)
	}
}

// Args and RegisterFlags are one definition: a Config survives the trip
// through the command line.
func TestConfigArgsRoundTrip(t *testing.T) {
	in := &Config{
		ID: "c1", Bundle: "/b", Runtime: "/usr/bin/runc", RuntimeRoot: "/r", StateDir: "/s",
		LogPath: "/l.json", LogMaxSize: 1000, LogMaxFiles: 3, TTY: true, Stdin: true,
		Restart: RestartPolicy{Name: RestartOnFailure, MaxRetries: 4},
		Health:  &HealthConfig{Exec: []string{"sh", "-c", "exit 0"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 5, StartPeriod: 3 * time.Second},
	}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	var out Config
	if rest, err := ParseFlags(in.Args(), out.Flags()); err != nil || len(rest) > 0 {
		t.Fatal(rest, err)
	}
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, &out) {
		t.Errorf("round trip:\n%+v\n%+v", in, &out)
	}
}

func TestParseRestartPolicy(t *testing.T) {
	for s, want := range map[string]RestartPolicy{
		"": {Name: RestartNo}, "no": {Name: RestartNo}, "always": {Name: RestartAlways},
		"unless-stopped": {Name: RestartUnlessStopped}, "on-failure": {Name: RestartOnFailure},
		"on-failure:3": {Name: RestartOnFailure, MaxRetries: 3},
	} {
		if got, err := ParseRestartPolicy(s); err != nil || got != want {
			t.Errorf("%q: %+v %v", s, got, err)
		}
	}
	for _, s := range []string{"sometimes", "always:3", "on-failure:x", "on-failure:-1"} {
		if _, err := ParseRestartPolicy(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	p := RestartPolicy{Name: RestartOnFailure, MaxRetries: 2}
	if !p.shouldRestart(1, 0) || !p.shouldRestart(1, 1) || p.shouldRestart(1, 2) || p.shouldRestart(0, 0) {
		t.Error("on-failure:2 decisions")
	}
}

// Rotation with max-files 1 truncates; every file keeps whole records.
func TestJSONFileLogUnit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	l, err := openLogFile(path, LogFormatJSON, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := &lineSplitter{stream: "stdout", log: l}
	for i := 0; i < 10; i++ {
		s.write([]byte("0123456789012345678901234567890123456789\n"), time.Unix(0, 0))
	}
	s.write([]byte("tail"), time.Unix(0, 0))
	s.flush(time.Unix(1, 5))
	l.close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"log":"tail","stream":"stdout","time":"1970-01-01T00:00:01.000000005Z"}` + "\n"
	if !strings.HasSuffix(string(data), want) {
		t.Errorf("log ends %q, want %q", data, want)
	}
	if len(data) > 100+len(want)+80 {
		t.Errorf("max-files 1 did not truncate: %d bytes", len(data))
	}
	if _, err := os.Stat(path + ".1"); err == nil {
		t.Error("max-files 1 rotated into .1")
	}
}

func TestDemux(t *testing.T) {
	var b []byte
	b = appendFrame(b, StreamStdout, []byte("out"))
	b = appendFrame(b, StreamStderr, []byte("err"))
	b = appendFrame(b, StreamStdout, []byte("more"))
	var o, e bytes.Buffer
	if err := Demux(bytes.NewReader(b), &o, &e); err != nil || o.String() != "outmore" || e.String() != "err" {
		t.Errorf("demux: %q %q %v", o.String(), e.String(), err)
	}
	if err := Demux(io.MultiReader(bytes.NewReader(b[:5])), &o, &e); err == nil {
		t.Error("torn header accepted")
	}
}

func TestParseFlags(t *testing.T) {
	var c Config
	var fd int
	flags := append(c.Flags(), Flag{Name: "sync-fd", Arg: "FD", Set: func(s string) (err error) { fd, err = strconv.Atoi(s); return err }})
	rest, err := ParseFlags([]string{"-id", "a", "--tty", "--stdin=false", "--log-max-size=10", "--sync-fd", "3", "x"}, flags)
	if err != nil || c.ID != "a" || !c.TTY || c.Stdin || c.LogMaxSize != 10 || fd != 3 || len(rest) != 1 || rest[0] != "x" {
		t.Errorf("parse: %+v fd %d rest %q err %v", c, fd, rest, err)
	}
	for _, bad := range [][]string{{"--nope"}, {"--id"}, {"--restart", "sometimes"}, {"--tty=maybe"}} {
		if _, err := ParseFlags(bad, flags); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseFlags([]string{"--help"}, flags); err != ErrHelp {
		t.Errorf("--help: %v", err)
	}
}

// The k8s-file format is the CRI's: whole lines are F without their
// newline, pieces of a longer (or unterminated) line are P; SIGHUP's reopen
// starts a new file at the path after the kubelet renamed the old one.
func TestCRILogFormatAndReopenAfterRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	l, err := openLogFile(path, LogFormatCRI, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := &lineSplitter{stream: "stdout", log: l}
	errs := &lineSplitter{stream: "stderr", log: l}
	at := time.Date(2026, 12, 1, 10, 0, 0, 123, time.UTC)
	out.write([]byte("hello\nwor"), at)
	errs.write([]byte("oops\n"), at)
	out.write([]byte("ld\n"), at)
	long := strings.Repeat("x", maxLogLine+10)
	out.write([]byte(long), at)
	out.flush(at)
	if err := os.Rename(path, path+".20261201-100000"); err != nil {
		t.Fatal(err)
	}
	if err := l.reopen(); err != nil {
		t.Fatal(err)
	}
	out.write([]byte("after rotation\n"), at)
	l.close()

	ts := "2026-12-01T10:00:00.000000123Z"
	old, err := os.ReadFile(path + ".20261201-100000")
	if err != nil {
		t.Fatal(err)
	}
	want := ts + " stdout F hello\n" + ts + " stderr F oops\n" + ts + " stdout F world\n" +
		ts + " stdout P " + long[:maxLogLine] + "\n" + ts + " stdout P " + long[maxLogLine:] + "\n"
	if string(old) != want {
		t.Errorf("rotated log:\n%q\nwant\n%q", old, want)
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(cur) != ts+" stdout F after rotation\n" {
		t.Errorf("log after reopen: %q", cur)
	}
}
