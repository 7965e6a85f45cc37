package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hypercall"
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

// TestHowToAddHonest keeps the "How to add a hypercall" recipe true: every
// file it names exists, the hypervisor implements the generated interface
// in the file it names, and the guest checks live where it says.
func TestHowToAddHonest(t *testing.T) {
	paths := regexp.MustCompile("`([a-z]+(?:/[A-Za-z0-9_.]+)+\\.(?:go|h|c))`").FindAllStringSubmatch(HowToAdd, -1)
	if len(paths) < 6 {
		t.Fatalf("recipe names only %d files", len(paths))
	}
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(root, p[1])); err != nil {
			t.Errorf("recipe names %s: %v", p[1], err)
		}
	}
	hv, err := os.ReadFile(filepath.Join(root, "hv/hypercalls.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(hv, []byte("var _ hypercall.Handlers = ")) {
		t.Error("hv/hypercalls.go does not assert that it implements hypercall.Handlers")
	}
	srcs, _ := filepath.Glob(filepath.Join(root, "guestkit/testguest/*.c"))
	var checks []byte
	for _, s := range srcs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		checks = append(checks, b...)
	}
	// Every live call is exercised by the test guest.
	for _, c := range hypercall.Table {
		if c.Status != hypercall.Reserved && !bytes.Contains(checks, []byte("pvisor_"+c.Name+"(")) {
			t.Errorf("the test guest (guestkit/testguest) never calls pvisor_%s", c.Name)
		}
	}
	if !strings.Contains(HowToAdd, "go generate ./...") {
		t.Error("recipe does not say to run go generate")
	}
	docs, err := os.ReadFile(filepath.Join(root, "docs/abi.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(docs, []byte(HowToAdd)) {
		t.Error("docs/abi.md does not carry the recipe")
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"NrVCPUs": "nr_vcpus", "VCPUInfo": "vcpu_info", "StartInfo": "start_info", "UpcallPending": "upcall_pending",
		"TSCToSystemMul": "tsc_to_system_mul", "MemmapGPA": "memmap_gpa", "GPAList": "gpa_list", "Flags": "flags",
		"EvtchnPending": "evtchn_pending", "MMUOp": "mmu_op", "HypercallPageGPA": "hypercall_page_gpa",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}
