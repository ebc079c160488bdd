package main

import (
	"flag"
	"os"

	"github.com/hull-runtime/hull/runtime/container"
)

// createFlags are shared by create and run.
type createFlags struct {
	bundle, pidFile, consoleSocket, pidfdSocket string
	preserveFds                                 int
	noPivot, noNewKeyring                       bool
}

func (c *createFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.bundle, "bundle", ".", "bundle directory")
	fs.StringVar(&c.bundle, "b", ".", "bundle directory")
	fs.StringVar(&c.pidFile, "pid-file", "", "write the init's pid to this file")
	fs.StringVar(&c.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fs.StringVar(&c.pidfdSocket, "pidfd-socket", "", "accepted for runc compatibility; unused")
	fs.IntVar(&c.preserveFds, "preserve-fds", 0, "pass this many fds after stdio to the container")
	fs.BoolVar(&c.noPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root")
	fs.BoolVar(&c.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
}

func (c *createFlags) options(id string) container.CreateOptions {
	return container.CreateOptions{
		ID: id, Bundle: c.bundle, PidFile: c.pidFile, ConsoleSocket: c.consoleSocket,
		PreserveFds: c.preserveFds, NoPivot: c.noPivot, NoNewKeyring: c.noNewKeyring,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	}
}

func cmdCreate(g *globals, args []string) error {
	fs := newFlags("create")
	var cf createFlags
	cf.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("create", pos, 0)
	if err != nil {
		return err
	}
	_, err = g.runtime().Create(cf.options(id))
	return err
}
