package main

import (
	"encoding/json"
	"os"
)

func cmdState(g *globals, args []string) error {
	fs := newFlags("state")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("state", pos, 0)
	if err != nil {
		return err
	}
	st, err := g.runtime().State(id)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}
