package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/hull-runtime/hull/runtime/container"
)

func cmdList(g *globals, args []string) error {
	fs := newFlags("list")
	format, quiet := "table", false
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "table or json")
	fs.BoolVar(&quiet, "quiet", false, "print only ids")
	fs.BoolVar(&quiet, "q", false, "print only ids")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	list, err := g.runtime().List()
	if err != nil {
		return err
	}
	if quiet {
		for _, s := range list {
			fmt.Println(s.ID)
		}
		return nil
	}
	switch format {
	case "json":
		if list == nil {
			list = []*container.StateJSON{}
		}
		return json.NewEncoder(os.Stdout).Encode(list)
	case "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range list {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return w.Flush()
	}
	return fmt.Errorf("list: invalid --format %q: use table or json", format)
}
