package main

import (
	"os"

	"github.com/hull-runtime/hull/runtime/criu"
)

// cmdRestore is `restore [options] ID`: bring a checkpoint back as a running
// container. Without --detach it waits for the container like `run`, then
// deletes it and exits with its status.
func cmdRestore(g *globals, args []string) error {
	fs := newFlags("restore")
	o := criu.RestoreOptions{CriuPath: g.criu, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	detach := false
	var noSubreaper, noPivot bool
	fs.StringVar(&o.Bundle, "bundle", ".", "bundle directory (config.json and rootfs)")
	fs.StringVar(&o.Bundle, "b", ".", "bundle directory (config.json and rootfs)")
	fs.StringVar(&o.ImagePath, "image-path", "", "directory of the CRIU images (default ./checkpoint)")
	fs.StringVar(&o.WorkPath, "work-path", "", "directory for CRIU's log (default: the image path)")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the restored init's pid to this file")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the new pty master")
	fs.BoolVar(&detach, "detach", false, "do not wait for the container to exit")
	fs.BoolVar(&detach, "d", false, "do not wait for the container to exit")
	fs.BoolVar(&o.TCPEstablished, "tcp-established", false, "restore open TCP connections")
	fs.BoolVar(&o.ExtUnixSk, "ext-unix-sk", false, "allow external unix sockets")
	fs.BoolVar(&o.ShellJob, "shell-job", false, "allow shell jobs")
	fs.BoolVar(&o.FileLocks, "file-locks", false, "handle file locks")
	fs.BoolVar(&o.AutoDedup, "auto-dedup", false, "punch restored pages out of the images")
	fs.StringVar(&o.ManageCgroupsMode, "manage-cgroups-mode", "", "cgroups mode: soft (default), full, strict or ignore")
	fs.BoolVar(&noSubreaper, "no-subreaper", false, "accepted for runc compatibility; unused")
	fs.BoolVar(&noPivot, "no-pivot", false, "accepted for runc compatibility; CRIU restores the root")
	refused := unsupportedFlags(fs, map[string]bool{"lazy-pages": true,
		"empty-ns": false, "lsm-profile": false, "lsm-mount-context": false})
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := refused.check("restore"); err != nil {
		return err
	}
	id, err := needID("restore", pos, 0)
	if err != nil {
		return err
	}
	o.ID = id
	// Catch signals from the start: they are forwarded to the container once it runs.
	sigc := catchSignals(!detach)
	rt := g.runtime()
	init, err := criu.Restore(rt, o)
	if err != nil {
		return err
	}
	if detach {
		return init.Process.Release()
	}
	err = waitForwarding(init.Process, sigc, nil)
	if derr := rt.Delete(id, true); derr != nil {
		g.log.Warn("delete after restore", "id", id, "err", derr)
	}
	return err
}
