package seccomp

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func cacheTestProfile() *specs.LinuxSeccomp {
	errno := uint(1)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno}},
	}
}

func TestCompiledProgramsRoundTripThroughTheCache(t *testing.T) {
	dir := t.TempDir()
	want, err := Compile(cacheTestProfile())
	if err != nil {
		t.Fatal(err)
	}
	first, err := CompileCached(cacheTestProfile(), dir)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.bpf"))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want one", files)
	}
	second, err := CompileCached(cacheTestProfile(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, want) || !reflect.DeepEqual(second, want) {
		t.Fatal("a cached program differs from the compiled one")
	}
	// A different profile gets its own entry.
	other := cacheTestProfile()
	other.Syscalls[0].Names = []string{"rmdir"}
	if _, err := CompileCached(other, dir); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.bpf")); len(files) != 2 {
		t.Fatalf("cache files %v, want two", files)
	}
}

func TestCorruptCacheEntryIsRecompiled(t *testing.T) {
	dir := t.TempDir()
	if _, err := CompileCached(cacheTestProfile(), dir); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.bpf"))
	if err := os.WriteFile(files[0], []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	want, _ := Compile(cacheTestProfile())
	got, err := CompileCached(cacheTestProfile(), dir)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("corrupt entry: %v, program equal %v", err, reflect.DeepEqual(got, want))
	}
}
