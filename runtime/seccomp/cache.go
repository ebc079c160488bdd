package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cacheFormat versions the cache files and the key: bump it when Compile
// starts producing different programs for the same profile.
const cacheFormat = "hull-seccomp-2"

// MarshalBinary encodes p: the seccomp(2) flags, then the BPF instructions.
func (p *Program) MarshalBinary() ([]byte, error) {
	out := make([]byte, 8, 8+len(p.insns)*sockFilterSize)
	binary.LittleEndian.PutUint64(out, uint64(p.flags))
	for _, in := range p.insns {
		out = binary.LittleEndian.AppendUint16(out, in.Code)
		out = append(out, in.Jt, in.Jf)
		out = binary.LittleEndian.AppendUint32(out, in.K)
	}
	return out, nil
}

// UnmarshalBinary decodes a program written by MarshalBinary.
func (p *Program) UnmarshalBinary(data []byte) error {
	if len(data) < 8 || (len(data)-8)%sockFilterSize != 0 {
		return errors.New("seccomp: malformed compiled program")
	}
	n := (len(data) - 8) / sockFilterSize
	if n == 0 || n > bpfMaxInsns {
		return fmt.Errorf("seccomp: compiled program has %d instructions", n)
	}
	p.flags = uintptr(binary.LittleEndian.Uint64(data))
	p.insns = make([]unix.SockFilter, n)
	for i := range p.insns {
		b := data[8+i*sockFilterSize:]
		p.insns[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
	}
	return nil
}

// CompileCached is Compile behind a cache of compiled programs in dir, keyed
// by a hash of the profile, the libseccomp version and the architecture.
// Compiling a typical engine profile takes milliseconds (about 20 ms for
// Podman's default here); reading it back takes microseconds. dir must be
// writable only by the runtime's user: a program read from it is trusted.
// Cache errors are not fatal: the profile is then compiled.
func CompileCached(c *specs.LinuxSeccomp, dir string) (*Program, error) {
	key, err := cacheKey(c)
	if err != nil || dir == "" {
		return Compile(c)
	}
	file := filepath.Join(dir, key+".bpf")
	if data, err := os.ReadFile(file); err == nil {
		p := new(Program)
		if p.UnmarshalBinary(data) == nil {
			return p, nil
		}
	}
	p, err := Compile(c)
	if err != nil {
		return nil, err
	}
	if data, err := p.MarshalBinary(); err == nil {
		_ = writeAtomic(dir, file, data)
	}
	return p, nil
}

func cacheKey(c *specs.LinuxSeccomp) (string, error) {
	profile, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", cacheFormat, LibraryVersion(), runtime.GOARCH)
	h.Write(profile)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeAtomic(dir, file string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
