package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/engine/copier"
)

const cpLong = `Copy files/folders between a container and the local filesystem, as docker cp does.

Use '-' as the source to read a tar archive from stdin and extract it into a
directory of the container, or as the destination to write a tar archive of
the container's source to stdout.

Container paths are relative to the container's / (a leading slash is
optional); local relative paths are relative to the current directory. A
local path containing ':' must start with '/' or './'.

  SRC is a file:       DEST missing: created as that file; DEST a directory:
                       DEST/SRC's name; DEST a file: overwritten; DEST missing
                       and ending in '/': error.
  SRC is a directory:  DEST missing: created with SRC's contents; DEST a
                       directory: copied as DEST/SRC's name, or, if SRC ends
                       in '/.', its contents go into DEST; DEST a file: error.

Files copied into the container are owned by root (0:0); files copied out
are owned by you, lose setuid/setgid bits and xattrs, and device nodes are
skipped. -a keeps the uids, gids, modes and device nodes as they are.

A running container is copied through its own mount namespace, volumes and
bind mounts included. A created or stopped container has only its root
filesystem: its volumes are not mounted then and are not copied.

Every container path is resolved inside the container's root (symlinks
cannot lead out of it, even when swapped during the copy), and nothing in the
container is executed. Pseudo filesystems (/proc, /sys, cgroups) are not
copied.`

func newCpCommand(g *globals) *cobra.Command {
	var archive, follow, quiet bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  hull cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "copy files/folders between a container and the local filesystem",
		Long:  cpLong,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg, err := runCp(cmd.Context(), g, args[0], args[1], archive, follow)
			if err != nil {
				// docker cp fails with 1, not the engine's 125.
				fmt.Fprintln(os.Stderr, "Error:", err)
				return exitError(1)
			}
			if msg != "" && !quiet && cpToTerminal(os.Stderr) {
				fmt.Fprintln(os.Stderr, msg)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&archive, "archive", "a", false, "archive mode: keep uid/gid, modes and device nodes")
	f.BoolVarP(&follow, "follow-link", "L", false, "always follow a symlink in SRC_PATH")
	f.BoolVarP(&quiet, "quiet", "q", false, "print no progress output")
	return cmd
}

// splitCpArg splits CONTAINER:PATH; a local path is one starting with "/"
// or, before its first ':', with "." ("./a:b"), or one without ':'.
func splitCpArg(arg string) (ctr, p string) {
	if strings.HasPrefix(arg, "/") {
		return "", arg
	}
	name, rest, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(name, ".") {
		return "", arg
	}
	return name, rest
}

// runCp does one copy and returns the line that reports it.
func runCp(ctx context.Context, g *globals, src, dst string, archive, follow bool) (_ string, retErr error) {
	srcCtr, srcPath := splitCpArg(src)
	dstCtr, dstPath := splitCpArg(dst)
	switch {
	case srcCtr != "" && dstCtr != "":
		return "", errors.New("copying between containers is not supported")
	case srcCtr == "" && dstCtr == "":
		return "", errors.New("one of the paths must be CONTAINER:PATH")
	case srcPath == "":
		return "", errors.New("the source path is empty")
	case dstPath == "":
		return "", errors.New("the destination path is empty")
	}
	e, done, err := g.Engine(nil)
	if err != nil {
		return "", err
	}
	defer done()
	ref := srcCtr
	if ref == "" {
		ref = dstCtr
	}
	c, err := e.Containers.Get(ref)
	if err != nil {
		return "", err
	}
	root, release, err := e.CopyRoot(ctx, c)
	if err != nil {
		return "", err
	}
	defer func() { retErr = errors.Join(retErr, release()) }()

	var res copier.Result
	if srcCtr != "" {
		res, err = copyOut(ctx, root, srcPath, dstPath, archive, follow)
		if err != nil {
			return "", err
		}
		if n := len(res.Skipped); n > 0 {
			list := strings.Join(res.Skipped[:min(n, 5)], ", ")
			if n > 5 {
				list += ", ..."
			}
			fmt.Fprintf(os.Stderr, "hull cp: skipped %d device node(s) (-a copies them): %s\n", n, list)
		}
		if dstPath == "-" {
			return "", nil
		}
		return fmt.Sprintf("Successfully copied %s to %s", humanSize(res.Bytes), dstPath), nil
	}
	opts := copier.Options{FollowLink: follow}
	if !archive {
		opts.Owner = &copier.Owner{UID: 0, GID: 0}
	}
	if srcPath == "-" {
		res, err = copier.ExtractArchive(ctx, os.Stdin, root, dstPath, opts)
	} else {
		var host *copier.Root
		if host, err = copier.OpenRoot("/", "on the host"); err != nil {
			return "", err
		}
		defer host.Close()
		var abs string
		if abs, err = hostPath(srcPath); err != nil {
			return "", err
		}
		res, err = copier.Copy(ctx, host, abs, root, dstPath, opts)
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Successfully copied %s to %s:%s", humanSize(res.Bytes), c.Name, dstPath), nil
}

// copyOut copies srcPath of the container root to the local dstPath, or
// to stdout as a tar stream for "-".
func copyOut(ctx context.Context, root *copier.Root, srcPath, dstPath string, archive, follow bool) (copier.Result, error) {
	if dstPath == "-" {
		return copier.WriteArchive(ctx, os.Stdout, root, srcPath, follow)
	}
	host, err := copier.OpenRoot("/", "on the host")
	if err != nil {
		return copier.Result{}, err
	}
	defer host.Close()
	abs, err := hostPath(dstPath)
	if err != nil {
		return copier.Result{}, err
	}
	opts := copier.Options{FollowLink: follow}
	if !archive {
		opts.Owner = &copier.Owner{UID: os.Getuid(), GID: os.Getgid()}
		opts.Sanitize = true
	}
	return copier.Copy(ctx, root, srcPath, host, abs, opts)
}

// hostPath makes a local path absolute without cleaning it: a trailing "/"
// or "/." keeps its meaning.
func hostPath(p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("the current directory: %w", err)
	}
	return strings.TrimSuffix(wd, "/") + "/" + p, nil
}

// cpToTerminal reports whether f is a terminal: the report line is for
// people, not scripts.
func cpToTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
