package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	rspec "github.com/hull-runtime/hull/runtime/spec"
)

func specVersion() string { return specs.Version }

func cmdSpec(g *globals, args []string) error {
	fs := newFlags("spec")
	bundle, rootless := "", false
	fs.StringVar(&bundle, "bundle", "", "write config.json into this directory")
	fs.StringVar(&bundle, "b", "", "write config.json into this directory")
	fs.BoolVar(&rootless, "rootless", false, "a config for a rootless container")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	s := rspec.Example()
	if rootless {
		rspec.ToRootless(s)
	}
	path := filepath.Join(bundle, "config.json")
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("spec: %s already exists: remove it first", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spec: %w", err)
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o666)
}
