package main

import hullglobals "github.com/hull-runtime/hull/cmd/internal/globals"

// globals are the flags every command sees (cmd/internal/globals).
type globals = hullglobals.Globals
