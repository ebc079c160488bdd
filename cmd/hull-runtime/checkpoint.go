package main

import (
	"flag"
	"fmt"
	"sort"

	"github.com/hull-runtime/hull/runtime/criu"
)

// cmdCheckpoint is `checkpoint [options] ID`: dump a running container with
// CRIU; unless --leave-running it is stopped afterwards.
func cmdCheckpoint(g *globals, args []string) error {
	fs := newFlags("checkpoint")
	o := criu.CheckpointOptions{CriuPath: g.criu}
	fs.StringVar(&o.ImagePath, "image-path", "", "directory for the CRIU images (default ./checkpoint)")
	fs.StringVar(&o.WorkPath, "work-path", "", "directory for CRIU's log (default: the image path)")
	fs.BoolVar(&o.LeaveRunning, "leave-running", false, "keep the container running after the checkpoint")
	fs.BoolVar(&o.TCPEstablished, "tcp-established", false, "allow open TCP connections")
	fs.BoolVar(&o.ExtUnixSk, "ext-unix-sk", false, "allow external unix sockets")
	fs.BoolVar(&o.ShellJob, "shell-job", false, "allow shell jobs")
	fs.BoolVar(&o.FileLocks, "file-locks", false, "handle file locks")
	fs.BoolVar(&o.TCPSkipInFlight, "tcp-skip-in-flight", false, "skip in-flight TCP connections")
	fs.BoolVar(&o.LinkRemap, "link-remap", false, "allow one to link unlinked files back when possible")
	fs.BoolVar(&o.AutoDedup, "auto-dedup", false, "deduplicate memory pages against a parent image")
	fs.StringVar(&o.ManageCgroupsMode, "manage-cgroups-mode", "", "cgroups mode: soft (default), full, strict or ignore")
	refused := unsupportedFlags(fs, map[string]bool{"pre-dump": true, "lazy-pages": true,
		"parent-path": false, "page-server": false, "status-fd": false, "empty-ns": false})
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := refused.check("checkpoint"); err != nil {
		return err
	}
	id, err := needID("checkpoint", pos, 0)
	if err != nil {
		return err
	}
	o.ID = id
	return criu.Checkpoint(g.runtime(), o)
}

// unsupported records runc options that hull-runtime parses but does not
// implement, so that they fail with a clear message instead of "flag
// provided but not defined".
type unsupported map[string]*bool

// unsupportedFlags defines boolean options (bool true) or options with a
// value (bool false) that are refused.
func unsupportedFlags(fs *flag.FlagSet, opts map[string]bool) unsupported {
	u := unsupported{}
	for n, isBool := range opts {
		given := new(bool)
		u[n] = given
		fs.Var(&refusedFlag{given: given, isBool: isBool}, n, "not supported")
	}
	return u
}

func (u unsupported) check(verb string) error {
	names := make([]string, 0, len(u))
	for n := range u {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if *u[n] {
			return fmt.Errorf("%s --%s is not supported by hull-runtime", verb, n)
		}
	}
	return nil
}

// refusedFlag records that an unsupported option was given.
type refusedFlag struct {
	given  *bool
	isBool bool
}

func (f *refusedFlag) String() string { return "" }
func (f *refusedFlag) Set(v string) error {
	*f.given = !f.isBool || v != "false"
	return nil
}
func (f *refusedFlag) IsBoolFlag() bool { return f.isBool }
