package monitor

import (
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// The monitor writes its few JSON documents by hand: encoding/json's encoder
// (reflection) would add a quarter of a megabyte to every monitor's resident
// text, and the documents are flat. The engine side decodes them with
// encoding/json (ReadExit, ReadHealth), and the tests check the round trip.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaped as encoding/json does
// (HTML-safe, invalid UTF-8 replaced by U+FFFD), which is also what Docker's
// json-file logger writes.
func appendJSONString(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonObject builds a flat JSON object.
type jsonObject struct{ b []byte }

func (o *jsonObject) key(k string) {
	if len(o.b) == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.b = appendJSONString(o.b, []byte(k))
	o.b = append(o.b, ':')
}

func (o *jsonObject) str(k, v string) {
	o.key(k)
	o.b = appendJSONString(o.b, []byte(v))
}

func (o *jsonObject) int(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

func (o *jsonObject) bool(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *jsonObject) time(k string, t time.Time) {
	o.key(k)
	o.b = append(o.b, '"')
	o.b = t.UTC().AppendFormat(o.b, time.RFC3339Nano)
	o.b = append(o.b, '"')
}

func (o *jsonObject) raw(k string, v []byte) {
	o.key(k)
	o.b = append(o.b, v...)
}

func (o *jsonObject) bytes() []byte {
	if len(o.b) == 0 {
		return []byte("{}")
	}
	return append(o.b, '}')
}

func (e *ExitStatus) marshal() []byte {
	var o jsonObject
	o.int("exitCode", int64(e.ExitCode))
	o.int("signal", int64(e.Signal))
	o.bool("oomKilled", e.OOMKilled)
	o.time("startedAt", e.StartedAt)
	o.time("finishedAt", e.FinishedAt)
	o.int("restarts", int64(e.Restarts))
	if e.Restarting {
		o.bool("restarting", true)
	}
	if e.Error != "" {
		o.str("error", e.Error)
	}
	if e.LogLinesDropped > 0 {
		o.int("logLinesDropped", int64(e.LogLinesDropped))
	}
	return append(o.bytes(), '\n')
}

func (h *Health) marshal() []byte {
	var o jsonObject
	o.str("status", h.Status)
	o.int("failingStreak", int64(h.FailingStreak))
	list := []byte{'['}
	for i, r := range h.Log {
		if i > 0 {
			list = append(list, ',')
		}
		var ro jsonObject
		ro.time("start", r.Start)
		ro.time("end", r.End)
		ro.int("exitCode", int64(r.ExitCode))
		ro.str("output", r.Output)
		list = append(list, ro.bytes()...)
	}
	list = append(list, ']')
	o.raw("log", list)
	return append(o.bytes(), '\n')
}

// syncMessage is the one line the monitor writes to --sync-fd.
func syncMessage(pid int, err error) []byte {
	var o jsonObject
	if err != nil {
		o.str("error", err.Error())
	} else {
		o.int("pid", int64(pid))
	}
	return append(o.bytes(), '\n')
}

// ReportError writes the {"error": "..."} line of the sync protocol to w.
func ReportError(w io.Writer, err error) error {
	_, werr := w.Write(syncMessage(0, err))
	return werr
}

// appendLogEntry appends one json-file record, Docker's field order.
func appendLogEntry(b []byte, line []byte, stream string, t time.Time) []byte {
	b = append(b, `{"log":`...)
	b = appendJSONString(b, line)
	b = append(b, `,"stream":"`...)
	b = append(b, stream...)
	b = append(b, `","time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

// appendCRILogEntry appends one line of the CRI log format: time, stream,
// F for a whole line (written without its newline) or P for a piece of one.
func appendCRILogEntry(b []byte, line []byte, stream string, t time.Time) []byte {
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	if n := len(line); n > 0 && line[n-1] == '\n' {
		b = append(b, " F "...)
		b = append(b, line[:n-1]...)
	} else {
		b = append(b, " P "...)
		b = append(b, line...)
	}
	return append(b, '\n')
}
