package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const root = "../../.."

// TestGeneratedFresh fails when a generated file differs from what the
// table produces: run `go generate ./...` and commit.
func TestGeneratedFresh(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./...)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./... and commit", name)
		}
	}
}

// TestHeaderCompiles builds a translation unit that includes the header and
// calls every helper, with the system C compiler, warnings as errors.
func TestHeaderCompiles(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal("gcc not found: run scripts/install-deps.sh")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "t.c")
	prog := `#include <pvisor/hypercall.h>
unsigned long pvisor_hypercall_entry;
long f(void) {
	pv_u64 v = 0;
	long r = pvisor_version();
	r += pvisor_console_write(0x1000, 4);
	r += pvisor_msr_read(0xc0000080, &v);
	return r + (long)v + (long)sizeof(struct pvisor_shared_info);
}
`
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cc, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2", "-ffreestanding",
		"-I", filepath.Join(root, "guestkit/include"), "-c", src, "-o", filepath.Join(dir, "t.o")).CombinedOutput()
	if err != nil {
		t.Fatalf("header does not compile: %v\n%s", err, out)
	}
}
