package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

const root = ".."

// makeRun is one `make` target built for the test process.
type makeRun struct {
	once sync.Once
	out  []byte
	err  error
}

var makeRuns sync.Map // target name -> *makeRun

// makeTarget builds a target of the project's Makefile once per test
// process (a no-op when it is up to date; the guests are cached by input
// hash). A failure is a test failure: tests never skip for want of a guest.
func makeTarget(t testing.TB, target string) {
	t.Helper()
	v, _ := makeRuns.LoadOrStore(target, &makeRun{})
	r := v.(*makeRun)
	r.once.Do(func() {
		cmd := exec.Command("make", "-s", target)
		cmd.Dir = root
		r.out, r.err = cmd.CombinedOutput()
	})
	if r.err != nil {
		t.Fatalf("make %s: %v\n%s", target, r.err, r.out)
	}
}

// testguest builds build/testguest.elf and returns its path.
func testguest(t *testing.T) string {
	t.Helper()
	makeTarget(t, "testguest")
	return filepath.Join(root, "build", "testguest.elf")
}

// pvisorBin builds cmd/pvisor once per test process.
var pvisorBuild struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

func pvisorBin(t *testing.T) string {
	t.Helper()
	pvisorBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "pvisor-test-bin")
		if err != nil {
			pvisorBuild.err = err
			return
		}
		pvisorBuild.path = filepath.Join(dir, "pvisor")
		pvisorBuild.out, pvisorBuild.err = exec.Command("go", "build", "-o", pvisorBuild.path, "../cmd/pvisor").CombinedOutput()
	})
	if pvisorBuild.err != nil {
		t.Fatalf("go build ./cmd/pvisor: %v\n%s", pvisorBuild.err, pvisorBuild.out)
	}
	return pvisorBuild.path
}
