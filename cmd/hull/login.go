package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/hull-runtime/hull/image/registry"
)

func newLoginCommand(g *globals) *cobra.Command {
	var user, pass string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "login [flags] REGISTRY",
		Short: "log in to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := bufio.NewReader(os.Stdin)
			if user == "" {
				fmt.Fprint(os.Stderr, "Username: ")
				line, err := in.ReadString('\n')
				if err != nil && line == "" {
					return errors.New("login: no username given (use --username)")
				}
				user = strings.TrimSpace(line)
			}
			switch {
			case passStdin:
				line, err := in.ReadString('\n')
				if err != nil && line == "" {
					return errors.New("login: --password-stdin: nothing on stdin")
				}
				pass = strings.TrimRight(line, "\r\n")
			case pass == "":
				fmt.Fprint(os.Stderr, "Password: ")
				p, err := readPassword(in)
				fmt.Fprintln(os.Stderr)
				if err != nil {
					return err
				}
				pass = p
			}
			rc, err := g.RegistryConfig()
			if err != nil {
				return err
			}
			if err := registry.Login(cmd.Context(), rc, args[0], user, pass, g.AuthFiles()[0]); err != nil {
				return err
			}
			fmt.Println("Login Succeeded!")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&user, "username", "u", "", "user name")
	f.StringVarP(&pass, "password", "p", "", "password (prefer --password-stdin)")
	f.BoolVar(&passStdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

// readPassword reads a line from the terminal without echo.
func readPassword(in *bufio.Reader) (string, error) {
	fd := int(os.Stdin.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err == nil {
		noEcho := *old
		noEcho.Lflag &^= unix.ECHO
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err == nil {
			defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
		}
	}
	line, err := in.ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("login: no password given")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func newLogoutCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "remove a registry's credentials",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := registry.Logout(g.AuthFiles()[0], args[0]); err != nil {
				return err
			}
			fmt.Println("Removed login credentials for", args[0])
			return nil
		},
	}
}
