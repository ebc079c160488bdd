package main

import (
	"encoding/json"
	"os"

	"github.com/hull-runtime/hull/runtime/seccomp"
	rspec "github.com/hull-runtime/hull/runtime/spec"
)

func cmdFeatures(g *globals, args []string) error {
	fs := newFlags("features")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "    ")
	return enc.Encode(rspec.Features(rspec.FeatureOptions{
		Version: version,
		Seccomp: &rspec.SeccompFeatures{
			LibseccompVersion: seccomp.LibraryVersion(),
			SupportedFlags:    seccomp.SupportedFlags(),
		},
	}))
}
