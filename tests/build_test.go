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

// pvisorBuilt is one build of cmd/pvisor for the test process.
type pvisorBuilt struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

var pvisorBuild, attackBuild pvisorBuilt

// pvisorBin builds cmd/pvisor once per test process.
func pvisorBin(t *testing.T) string { return pvisorBuild.get(t) }

// pvisorAttackBin builds cmd/pvisor with the pvisor_attack tag: its
// virtio-blk device code plays a compromised backend that attempts what
// a guest-written sector tells it (hv/virtio/attack_hook.go).
func pvisorAttackBin(t *testing.T) string { return attackBuild.get(t, "-tags", "pvisor_attack") }

func (b *pvisorBuilt) get(t *testing.T, flags ...string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "pvisor-test-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "pvisor")
		// Without cgo, as make build: the sandbox confines every thread
		// only in such a build (hv/sandbox).
		cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", b.path, "../cmd/pvisor")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build %v ./cmd/pvisor: %v\n%s", flags, b.err, b.out)
	}
	return b.path
}
