// Command mkbundle writes a busybox OCI bundle for demos and benchmarks:
// mkbundle DIR [ARGS...] (default args: sh).
package main

import (
	"fmt"
	"os"

	"github.com/hull-runtime/hull/test/bundle"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mkbundle DIR [ARGS...]")
		os.Exit(2)
	}
	args := os.Args[2:]
	if len(args) == 0 {
		args = []string{"sh"}
	}
	if err := bundle.Write(os.Args[1], bundle.Spec(args...)); err != nil {
		fmt.Fprintln(os.Stderr, "mkbundle:", err)
		os.Exit(1)
	}
}
