package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func newPushCommand(g *globals) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [flags] IMAGE [DESTINATION]",
		Short: "push an image to a registry",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			dest := ""
			if len(args) == 2 {
				dest = args[1]
			}
			md, err := s.Push(cmd.Context(), args[0], dest)
			if err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(os.Stderr, "Pushed %s\n", args[len(args)-1])
			}
			fmt.Println(md.Digest)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress")
	return cmd
}

func newSaveCommand(g *globals) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [flags] IMAGE...",
		Short: "write images to a tar archive (both an OCI layout and a docker-archive)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "", "oci-archive", "docker-archive":
			default:
				return fmt.Errorf("--format %q: use oci-archive or docker-archive (the archive is both)", format)
			}
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			if output == "" || output == "-" {
				if isTTY(os.Stdout) {
					return errors.New("save: refusing to write an archive to a terminal; use -o FILE or redirect stdout")
				}
				w := bufio.NewWriterSize(os.Stdout, 1<<20)
				if err := s.Save(cmd.Context(), w, args); err != nil {
					return err
				}
				return w.Flush()
			}
			// Written beside the target and renamed: no half archive under its name.
			tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*")
			if err != nil {
				return fmt.Errorf("save: %w", err)
			}
			defer os.Remove(tmp.Name())
			w := bufio.NewWriterSize(tmp, 1<<20)
			err = s.Save(cmd.Context(), w, args)
			if err == nil {
				err = w.Flush()
			}
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("save %s: %w", output, err)
			}
			return os.Rename(tmp.Name(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default stdout)")
	cmd.Flags().StringVar(&format, "format", "", "oci-archive or docker-archive (accepted for compatibility: the archive is both)")
	return cmd
}

func newLoadCommand(g *globals) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [flags]",
		Short: "load images from a tar archive (OCI layout or docker-archive)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			var r io.Reader = os.Stdin
			if input != "" && input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return fmt.Errorf("load: %w", err)
				}
				defer f.Close()
				r = f
			} else if isTTY(os.Stdin) {
				return errors.New("load: no archive on stdin; use -i FILE")
			}
			res, err := s.Load(cmd.Context(), bufio.NewReaderSize(r, 1<<20))
			if err != nil {
				return err
			}
			for _, n := range res.Names {
				if quiet {
					fmt.Println(n)
				} else {
					fmt.Println("Loaded image:", n)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "archive to read (default stdin)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")
	return cmd
}

func newImportCommand(g *globals) *cobra.Command {
	var changes []string
	cmd := &cobra.Command{
		Use:   "import [flags] FILE|- [REFERENCE]",
		Short: "create an image from a root filesystem tarball",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var cfg ocispec.ImageConfig
			for _, c := range changes {
				if err := applyChange(&cfg, c); err != nil {
					return err
				}
			}
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			var r io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				defer f.Close()
				r = f
			}
			name := "localhost/imported:latest"
			if len(args) == 2 {
				name = args[1]
			}
			id, err := s.Import(cmd.Context(), bufio.NewReaderSize(r, 1<<20), name, cfg)
			if err != nil {
				return err
			}
			fmt.Println(id)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "Dockerfile instruction for the config: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE (JSON array or shell form)")
	return cmd
}

// applyChange applies one --change instruction to an image config.
func applyChange(c *ocispec.ImageConfig, change string) error {
	instr, arg, _ := strings.Cut(strings.TrimSpace(change), " ")
	arg = strings.TrimSpace(arg)
	list := func() []string {
		var l []string
		if strings.HasPrefix(arg, "[") {
			if err := jsonUnmarshal(arg, &l); err == nil {
				return l
			}
		}
		return []string{"/bin/sh", "-c", arg}
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = list()
	case "ENTRYPOINT":
		c.Entrypoint = list()
	case "ENV":
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			k, v, _ = strings.Cut(arg, " ")
		}
		c.Env = append(c.Env, strings.TrimSpace(k)+"="+strings.TrimSpace(v))
	case "WORKDIR":
		c.WorkingDir = arg
	case "USER":
		c.User = arg
	case "LABEL":
		k, v, _ := strings.Cut(arg, "=")
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(arg) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	default:
		return fmt.Errorf("--change %q: unsupported instruction %s (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE)", change, instr)
	}
	return nil
}
