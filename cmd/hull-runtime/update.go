package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cmdUpdate is `update [options] ID`: change the resource limits of a
// container, from runc's flags or from a runtime-spec LinuxResources JSON
// (-r FILE, or -r - for stdin).
func cmdUpdate(g *globals, args []string) error {
	fs := newFlags("update")
	vals := map[string]*string{}
	str := func(name, usage string) {
		v := new(string)
		vals[name] = v
		fs.StringVar(v, name, "", usage)
	}
	var resources string
	fs.StringVar(&resources, "resources", "", "file with the LinuxResources JSON to apply, - for stdin (other options are then ignored)")
	fs.StringVar(&resources, "r", "", "file with the LinuxResources JSON to apply, - for stdin (other options are then ignored)")
	str("memory", "memory limit (bytes, or with a k, m, g suffix; -1: unlimited)")
	str("memory-reservation", "memory soft limit (bytes, or with a k, m, g suffix; -1: unlimited)")
	str("memory-swap", "memory+swap limit (bytes, or with a k, m, g suffix; -1: unlimited)")
	str("kernel-memory", "obsolete, ignored")
	str("kernel-memory-tcp", "obsolete, ignored")
	str("cpu-share", "CPU shares (relative weight)")
	fs.Var(stringAlias{vals["cpu-share"]}, "cpu-shares", "CPU shares (alias of --cpu-share)")
	str("cpu-quota", "CFS quota in microseconds per period (-1: unlimited)")
	str("cpu-period", "CFS period in microseconds")
	str("cpu-burst", "CFS burst in microseconds")
	str("cpu-rt-period", "realtime period in microseconds")
	str("cpu-rt-runtime", "realtime runtime in microseconds per period")
	str("cpuset-cpus", "CPUs to use, e.g. 0-3,7")
	str("cpuset-mems", "memory nodes to use, e.g. 0")
	str("cpu-idle", "1: SCHED_IDLE for the cgroup, 0: default")
	str("pids-limit", "maximum number of pids (-1: unlimited; 0: unchanged)")
	str("blkio-weight", "block I/O weight, 10 to 1000 (0: unchanged)")
	str("l3-cache-schema", "Intel RDT/CAT L3 cache schema (unsupported)")
	str("mem-bw-schema", "Intel RDT/MBA memory bandwidth schema (unsupported)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("update", pos, 0)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["cpu-shares"] {
		set["cpu-share"] = true
	}
	for _, f := range []string{"l3-cache-schema", "mem-bw-schema"} {
		if set[f] {
			return fmt.Errorf("update --%s: Intel RDT (resctrl) is not supported on this host", f)
		}
	}

	var r *specs.LinuxResources
	fromJSON := set["resources"] || set["r"]
	if fromJSON {
		for name := range set {
			if name != "resources" && name != "r" {
				g.log.Warn("update: option ignored because --resources is given", "option", "--"+name)
			}
		}
		if r, err = readResources(resources); err != nil {
			return err
		}
	} else if r, err = flagResources(g, vals, set); err != nil {
		return err
	}
	// updateFlags map runc's `update` options onto the spec fields that the
	// cgroup adapter's errors name (specific fields before their groups) and
	// the cgroup files they are written to.
	updateFlags := []struct {
		name  string
		field string // the runtime-spec field, as the cgroup adapter's errors name it
	}{
		{"memory-reservation", "linux.resources.memory.reservation"},
		{"memory-swap", "linux.resources.memory.swap"},
		{"memory", "linux.resources.memory.limit"},
		{"cpu-share", "linux.resources.cpu.shares"},
		{"cpu-quota", "linux.resources.cpu.quota"},
		{"cpu-burst", "linux.resources.cpu.burst"},
		{"cpu-period", "linux.resources.cpu.period"},
		{"cpu-rt-period", "linux.resources.cpu.realtimePeriod"},
		{"cpu-rt-runtime", "linux.resources.cpu.realtimeRuntime"},
		{"cpuset-cpus", "linux.resources.cpu.cpus"},
		{"cpuset-mems", "linux.resources.cpu.mems"},
		{"cpu-idle", "linux.resources.cpu.idle"},
		{"pids-limit", "linux.resources.pids"},
		{"blkio-weight", "linux.resources.blockIO"},
		{"memory", "linux.resources.memory"},
		{"cpu-share", "linux.resources.cpu"},
		// The cgroup files (v1, then v2) that the kernel refused to write.
		{"memory", "memory.limit_in_bytes"},
		{"memory", "memory.max"},
		{"memory-reservation", "memory.soft_limit_in_bytes"},
		{"memory-reservation", "memory.low"},
		{"memory-swap", "memory.memsw.limit_in_bytes"},
		{"memory-swap", "memory.swap.max"},
		{"cpu-share", "cpu.shares"},
		{"cpu-share", "cpu.weight"},
		{"cpu-quota", "cpu.cfs_quota_us"},
		{"cpu-period", "cpu.cfs_period_us"},
		{"cpu-quota", "cpu.max"},
		{"cpu-period", "cpu.max"},
		{"cpu-burst", "cpu.cfs_burst_us"},
		{"cpu-burst", "cpu.max.burst"},
		{"cpu-rt-period", "cpu.rt_period_us"},
		{"cpu-rt-runtime", "cpu.rt_runtime_us"},
		{"cpu-idle", "cpu.idle"},
		{"cpuset-cpus", "cpuset.cpus"},
		{"cpuset-mems", "cpuset.mems"},
		{"pids-limit", "pids.max"},
		{"blkio-weight", "blkio.weight"},
		{"blkio-weight", "io.weight"},
		{"blkio-weight", "io.bfq.weight"},
	}
	if _, err := g.runtime().Update(id, r); err != nil {
		// Name the option whose field the error is about: the field named
		// first in the message, the most specific one on a tie.
		best, at := "", -1
		for _, f := range updateFlags {
			i := strings.Index(err.Error(), f.field)
			if !fromJSON && set[f.name] && i >= 0 && (at < 0 || i < at) {
				best, at = f.name, i
			}
		}
		if best != "" {
			return fmt.Errorf("update --%s %s: %w", best, *vals[best], err)
		}
		return fmt.Errorf("update: %w", err)
	}
	return nil
}

// stringAlias is a flag that sets another flag's variable.
type stringAlias struct{ p *string }

func (a stringAlias) String() string {
	if a.p == nil {
		return ""
	}
	return *a.p
}
func (a stringAlias) Set(v string) error { *a.p = v; return nil }

// readResources decodes a LinuxResources JSON from a file or stdin ("-").
func readResources(path string) (*specs.LinuxResources, error) {
	var in io.Reader = os.Stdin
	name := "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("update --resources: %w", err)
		}
		defer f.Close()
		in, name = f, path
	}
	var r specs.LinuxResources
	if err := json.NewDecoder(in).Decode(&r); err != nil {
		return nil, fmt.Errorf("update --resources %s: not a LinuxResources JSON object: %w", name, err)
	}
	return &r, nil
}

// flagResources turns the options into resources, leaving unset what was
// not given (runc's rules: 0 means unchanged for the numeric options).
func flagResources(g *globals, vals map[string]*string, set map[string]bool) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{}, CPU: &specs.LinuxCPU{}, BlockIO: &specs.LinuxBlockIO{}, Pids: &specs.LinuxPids{}}
	bad := func(name string, err error) error {
		return fmt.Errorf("update --%s %q: %w", name, *vals[name], err)
	}
	for _, m := range []struct {
		name string
		dst  **int64
	}{
		{"memory", &r.Memory.Limit},
		{"memory-reservation", &r.Memory.Reservation},
		{"memory-swap", &r.Memory.Swap},
	} {
		if !set[m.name] {
			continue
		}
		v, err := parseMemory(*vals[m.name])
		if err != nil {
			return nil, bad(m.name, err)
		}
		*m.dst = &v
	}
	for _, name := range []string{"kernel-memory", "kernel-memory-tcp"} {
		if set[name] {
			if _, err := parseMemory(*vals[name]); err != nil {
				return nil, bad(name, err)
			}
			g.log.Warn("update: kernel memory limits are obsolete and ignored", "option", "--"+name)
		}
	}
	for _, u := range []struct {
		name string
		dst  **uint64
	}{
		{"cpu-share", &r.CPU.Shares},
		{"cpu-period", &r.CPU.Period},
		{"cpu-burst", &r.CPU.Burst},
		{"cpu-rt-period", &r.CPU.RealtimePeriod},
	} {
		if !set[u.name] {
			continue
		}
		v, err := strconv.ParseUint(*vals[u.name], 10, 64)
		if err != nil {
			return nil, bad(u.name, errors.New("not a non-negative integer"))
		}
		*u.dst = &v
	}
	for _, s := range []struct {
		name string
		dst  **int64
	}{
		{"cpu-quota", &r.CPU.Quota},
		{"cpu-rt-runtime", &r.CPU.RealtimeRuntime},
		{"cpu-idle", &r.CPU.Idle},
		{"pids-limit", &r.Pids.Limit},
	} {
		if !set[s.name] {
			continue
		}
		v, err := strconv.ParseInt(*vals[s.name], 10, 64)
		if err != nil {
			return nil, bad(s.name, errors.New("not an integer"))
		}
		*s.dst = &v
	}
	if l := r.Pids.Limit; l != nil && *l < -1 {
		return nil, bad("pids-limit", errors.New("must be -1 (unlimited), 0 (unchanged) or a positive number"))
	}
	if set["blkio-weight"] {
		v, err := strconv.ParseUint(*vals["blkio-weight"], 10, 16)
		if err != nil {
			return nil, bad("blkio-weight", errors.New("must be between 10 and 1000 (0: unchanged)"))
		}
		w := uint16(v)
		r.BlockIO.Weight = &w
	}
	r.CPU.Cpus = *vals["cpuset-cpus"]
	r.CPU.Mems = *vals["cpuset-mems"]
	// Leave out the groups no option touched, so state.json keeps its shape.
	if *r.Memory == (specs.LinuxMemory{}) {
		r.Memory = nil
	}
	if *r.CPU == (specs.LinuxCPU{}) {
		r.CPU = nil
	}
	if r.BlockIO.Weight == nil {
		r.BlockIO = nil
	}
	if r.Pids.Limit == nil {
		r.Pids = nil
	}
	return r, nil
}

// parseMemory parses a size like runc (docker/go-units RAMInBytes): bytes,
// or a number with a k, m, g, t or p suffix (powers of 1024, optionally
// followed by "i" and/or "b", with an optional space before the suffix),
// and -1 for unlimited.
func parseMemory(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	bad := errors.New("invalid size (want bytes or a number with a k, m, g, t or p suffix, e.g. 512m; -1 for unlimited)")
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, rest := s[:i], s[i:]
	if num == "" || num[0] == '.' {
		return 0, bad
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, bad
	}
	rest = strings.TrimPrefix(rest, " ")
	mult := float64(1)
	if rest != "" {
		if p := strings.IndexByte("kmgtp", lower(rest[0])); p >= 0 {
			for range p + 1 {
				mult *= 1024
			}
			rest = rest[1:]
		}
	}
	if rest != "" && lower(rest[0]) == 'i' {
		rest = rest[1:]
	}
	if rest != "" && lower(rest[0]) == 'b' {
		rest = rest[1:]
	}
	if rest != "" {
		return 0, bad
	}
	v *= mult
	if v >= 1<<63 {
		return 0, errors.New("size too large")
	}
	return int64(v), nil
}

func lower(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}
