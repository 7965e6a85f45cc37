package tests

import (
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

const root = ".."

var (
	buildOnce sync.Once
	buildErr  error
	buildOut  []byte
)

// testguest builds build/testguest.elf with the project's Makefile (a
// no-op when it is up to date) and returns its path. A missing compiler
// is a failure, not a skip.
func testguest(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("make", "-s", "testguest")
		cmd.Dir = root
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("make testguest: %v\n%s", buildErr, buildOut)
	}
	return filepath.Join(root, "build", "testguest.elf")
}
