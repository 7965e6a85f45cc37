package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain points the state directory at a temporary one, so the runs
// the tests make record their lineages there.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pvisor-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("PVISOR_STATE_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
