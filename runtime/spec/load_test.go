package spec

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeConfig writes data as the bundle's config.json.
func writeConfig(t *testing.T, bundle, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exampleJSON(t *testing.T) string {
	t.Helper()
	b, err := json.MarshalIndent(Example(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoadReadsTheExampleAndMakesRootAbsolute(t *testing.T) {
	bundle := newBundle(t)
	writeConfig(t, bundle, exampleJSON(t))
	s, err := Load(bundle)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	want, err := filepath.EvalSymlinks(filepath.Join(bundle, "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Path != want {
		t.Errorf("root.path = %q, want %q", s.Root.Path, want)
	}
	if s.Process.Args[0] != "sh" {
		t.Errorf("process.args = %q", s.Process.Args)
	}
}

func TestLoadResolvesARelativeBundleAndSymlinkedRoot(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real-rootfs")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(base, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../real-rootfs", filepath.Join(bundle, "rootfs")); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, bundle, exampleJSON(t))
	t.Chdir(base)
	s, err := Load("bundle")
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	want, _ := filepath.EvalSymlinks(real)
	if s.Root.Path != want {
		t.Errorf("root.path = %q, want %q", s.Root.Path, want)
	}
}

func TestLoadIgnoresUnknownMembers(t *testing.T) {
	bundle := newBundle(t)
	doc := strings.Replace(exampleJSON(t), "{", `{"io.example.extension": {"x": [1, 2]},`, 1)
	writeConfig(t, bundle, doc)
	if _, err := Load(bundle); err != nil {
		t.Fatalf("Load = %v", err)
	}
}

func TestLoadRejects(t *testing.T) {
	valid := exampleJSON(t)
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error
	}{
		{"malformed JSON", `{"ociVersion": "1.0.0",, }`,
			[]string{"config.json: invalid JSON at line 1, column 24 (byte offset 23)", "invalid character ','"}},
		{"malformed JSON on a later line", "{\n  \"ociVersion\": \"1.0.0\"\n  \"root\": {}\n}",
			[]string{"config.json: invalid JSON at line 3", "byte offset"}},
		{"truncated JSON", `{"ociVersion": "1.0.0", "root": {`,
			[]string{"config.json: invalid JSON", "unexpected end"}},
		{"trailing garbage", valid + "\n{}",
			[]string{"config.json: trailing data after the JSON object", "byte offset " + strconv.Itoa(len(valid)+1)}},
		{"trailing word", valid + " garbage",
			[]string{"config.json: trailing data"}},
		{"empty file", "  \n", []string{"config.json: empty file"}},
		{"array at top level", `[]`, []string{"config.json: (top level): JSON array where an object is expected"}},
		{"string where array expected", strings.Replace(valid, `"args": [`+"\n\t\t\t\"sh\"\n\t\t]", `"args": "sh"`, 1),
			[]string{"config.json: process.args: JSON string where an array is expected", "byte offset"}},
		{"negative uid", strings.Replace(valid, `"uid": 0`, `"uid": -1`, 1),
			[]string{"config.json: process.user.uid: JSON number -1 where a non-negative integer (uint32) is expected", "line "}},
		{"number where string expected inside an array", strings.Replace(valid, `"type": "ipc"`, `"type": 5`, 1),
			[]string{"config.json: linux.namespaces[2].type: JSON number where a string is expected"}},
		{"object where boolean expected", strings.Replace(valid, `"terminal": true`, `"terminal": {}`, 1),
			[]string{"config.json: process.terminal: JSON object where a boolean is expected"}},
		{"string where object expected in a map", strings.Replace(valid, `"ociVersion"`, `"annotations": {"a": 1}, "ociVersion"`, 1),
			[]string{`config.json: annotations.a: JSON number where a string is expected`}},
		{"missing root directory", strings.Replace(valid, `"path": "rootfs"`, `"path": "no-such-rootfs"`, 1),
			[]string{"config.json: root.path: root filesystem stat ", "no such file or directory"}},
		{"invalid field", strings.Replace(valid, `"cwd": "/"`, `"cwd": "relative"`, 1),
			[]string{`config.json: process.cwd: "relative" is not an absolute path`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.doc == valid {
				t.Fatal("test document was not changed; fix the replacement")
			}
			bundle := newBundle(t)
			writeConfig(t, bundle, tc.doc)
			_, err := Load(bundle)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadWrapsDecoderErrors(t *testing.T) {
	bundle := newBundle(t)
	writeConfig(t, bundle, `{"ociVersion": 1}`)
	_, err := Load(bundle)
	var typ *json.UnmarshalTypeError
	if !errors.As(err, &typ) {
		t.Fatalf("Load = %v, want it to wrap *json.UnmarshalTypeError", err)
	}
	writeConfig(t, bundle, `{"ociVersion": }`)
	_, err = Load(bundle)
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		t.Fatalf("Load = %v, want it to wrap *json.SyntaxError", err)
	}
}

func TestLoadWithoutConfigFileIsNotExist(t *testing.T) {
	_, err := Load(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v, want fs.ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), "config.json: ") {
		t.Errorf("error %q lacks the config.json prefix", err)
	}
}

func TestJSONPathAtFindsIndexedPaths(t *testing.T) {
	doc := []byte(`{"a": [1, {"b": [true, "x"]}], "c": {"d": null}}`)
	tests := []struct {
		after string // the value's text; the offset is just past it
		want  string
	}{
		{`1`, "a[0]"},
		{`true`, "a[1].b[0]"},
		{`"x"`, "a[1].b[1]"},
		{`null`, "c.d"},
	}
	for _, tc := range tests {
		off := strings.Index(string(doc), tc.after) + len(tc.after)
		if got := jsonPathAt(doc, int64(off)); got != tc.want {
			t.Errorf("jsonPathAt(after %s) = %q, want %q", tc.after, got, tc.want)
		}
	}
}
