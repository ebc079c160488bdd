package main

import (
	"encoding/json"
	"os"

	rspec "github.com/hull-runtime/hull/runtime/spec"
)

func cmdFeatures(g *globals, args []string) error {
	fs := newFlags("features")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "    ")
	return enc.Encode(rspec.Features(rspec.FeatureOptions{}))
}
