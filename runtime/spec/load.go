// Package spec loads, validates and produces OCI runtime-spec configurations
// (config.json) for hull-runtime: Load and Validate for create/run, Example
// and ToRootless for the `spec` verb, Features for the `features` verb, and
// ParseMountOptions, the mount option table shared with the mount code.
package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigName is the name of the configuration file inside a bundle.
const ConfigName = "config.json"

// Load reads <bundle>/config.json, decodes it, resolves root.path against
// the bundle into an absolute path without symlinks (when it exists), and
// validates the result with Validate. Unknown JSON members are ignored, as
// the runtime-spec requires; malformed JSON, data after the top-level object
// and values of the wrong type are errors that give the JSON field path and
// the position. Every error starts with "config.json: ".
func Load(bundle string) (*specs.Spec, error) {
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("%s: bundle: %w", ConfigName, err)
	}
	data, err := os.ReadFile(filepath.Join(abs, ConfigName))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigName, err)
	}
	s, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigName, err)
	}
	if s.Root != nil && s.Root.Path != "" {
		s.Root.Path = resolveRoot(abs, s.Root.Path)
	}
	if err := Validate(s, abs); err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigName, err)
	}
	return s, nil
}

// resolveRoot makes p absolute against bundle and resolves symlinks when the
// path exists, so later stages work on the real directory (as runc does by
// running in the bundle and reading its cwd from the kernel).
func resolveRoot(bundle, p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(bundle, p)
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real
	}
	return filepath.Clean(p)
}

// decodeError is a JSON problem with its position; it wraps the decoder's
// error.
type decodeError struct {
	msg string
	err error
}

func (e *decodeError) Error() string { return e.msg }
func (e *decodeError) Unwrap() error { return e.err }

// decode parses a config.json document into a Spec.
func decode(data []byte) (*specs.Spec, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty file")
	}
	var s specs.Spec
	err := json.Unmarshal(data, &s)
	if err == nil {
		return &s, nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// Offset counts the bytes read, the bad one included; point at it
		// (or at the end, when the input stopped short).
		at := syn.Offset - 1
		if at < 0 || strings.Contains(syn.Error(), "unexpected end") {
			at = syn.Offset
		}
		line, col := position(data, at)
		if strings.Contains(syn.Error(), "after top-level value") {
			return nil, &decodeError{
				msg: fmt.Sprintf("trailing data after the JSON object at line %d, column %d (byte offset %d)", line, col, at),
				err: err,
			}
		}
		return nil, &decodeError{
			msg: fmt.Sprintf("invalid JSON at line %d, column %d (byte offset %d): %s", line, col, at, syn.Error()),
			err: err,
		}
	case errors.As(err, &typ):
		field := jsonPathAt(data, typ.Offset)
		if field == "" {
			field = typ.Field
		}
		if field == "" {
			field = "(top level)"
		}
		line, col := position(data, typ.Offset)
		return nil, &decodeError{
			msg: fmt.Sprintf("%s: JSON %s where %s is expected, at line %d, column %d (byte offset %d)",
				field, typ.Value, jsonKind(typ), line, col, typ.Offset),
			err: err,
		}
	default:
		return nil, fmt.Errorf("decoding JSON: %w", err)
	}
}

// jsonKind names the JSON that would have fit the Go type of a type error.
func jsonKind(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "another type"
	}
	switch k := e.Type.Kind().String(); k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "int", "int8", "int16", "int32", "int64":
		return "an integer (" + e.Type.String() + ")"
	case "uint", "uint8", "uint16", "uint32", "uint64", "uintptr":
		return "a non-negative integer (" + e.Type.String() + ")"
	case "float32", "float64":
		return "a number"
	default:
		return e.Type.String()
	}
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// jsonPathAt returns the path, with array indexes, of the innermost JSON
// value that ends at or contains byte offset off of data; encoding/json's
// own Field leaves the indexes out. It returns "" when data cannot be walked
// that far.
func jsonPathAt(data []byte, off int64) string {
	type frame struct {
		array   bool
		index   int
		key     string
		wantKey bool
	}
	var stack []frame
	render := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		}
		return b.String()
	}
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].wantKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		n := len(stack)
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:n-1]
			valueDone()
			continue
		}
		if n > 0 && !stack[n-1].array && stack[n-1].wantKey {
			k, _ := tok.(string)
			stack[n-1].key, stack[n-1].wantKey = k, false
			continue
		}
		// tok starts (or is) a value at the current path.
		if dec.InputOffset() >= off {
			return render()
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{array: d == '[', wantKey: d == '{'})
			continue
		}
		valueDone()
	}
}
