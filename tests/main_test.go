package tests

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives every pvisor the tests start one state directory of the
// run's own (PVISOR_STATE_DIR), so lineage records and event logs never
// mix with the operator's or another run's.
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
