package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// cmdPs is `ps [--format table|json] ID [ps options...]`: json prints the
// host pids of the container's cgroup; table runs the host's ps with the
// given options (default -ef) and keeps the header and the container's lines.
func cmdPs(g *globals, args []string) error {
	fs := newFlags("ps")
	format := "table"
	fs.StringVar(&format, "format", format, "table or json")
	fs.StringVar(&format, "f", format, "table or json")
	// Options end at the container id: what follows belongs to ps.
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	pos := fs.Args()
	if len(pos) > 0 && pos[0] == "--" {
		pos = pos[1:]
	}
	if len(pos) < 1 {
		return errors.New("ps: container id is required")
	}
	id, psArgs := pos[0], pos[1:]
	if format != "table" && format != "json" {
		return fmt.Errorf("ps: invalid format option %q (table or json)", format)
	}
	pids, err := g.runtime().Processes(id)
	if err != nil {
		return err
	}
	if format == "json" {
		// runc prints null for no processes: keep that for parsers.
		return json.NewEncoder(os.Stdout).Encode(pids)
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ps %s: %w: %s", strings.Join(psArgs, " "), err, out)
	}
	return filterPs(string(out), pids)
}

// filterPs prints the header of ps output and the lines whose PID column
// holds one of pids.
func filterPs(out string, pids []int) error {
	lines := strings.Split(out, "\n")
	col := slices.Index(strings.Fields(lines[0]), "PID")
	if col < 0 {
		return errors.New("ps: couldn't find PID field in ps output (give ps options that print a PID column)")
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, lines[0])
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if col >= len(fields) {
			return fmt.Errorf("ps: unable to parse pid: line %q has no PID column", line)
		}
		p, err := strconv.Atoi(fields[col])
		if err != nil {
			return fmt.Errorf("ps: unable to parse pid %q: %w", fields[col], err)
		}
		if slices.Contains(pids, p) {
			fmt.Fprintln(w, line)
		}
	}
	return w.Flush()
}
