package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hypercall"
)

// The launch policy (issue 15, part 4): `pvisor measure` writes the
// digests a VM's boot will measure, and `pvisor run --expect-measurements
// FILE` refuses to boot a VM whose kernel, initramfs or command line
// measures otherwise, naming what differs. The digests are the ones the
// guest reads with measured_boot (hv.Measure), so the file also tells a
// guest-side verifier what to expect.

func init() {
	register(command{"measure", "print the digests a boot measures, for --expect-measurements", runMeasure})
}

// expectedMeasurements is an expected-measurements file: JSON, version 1,
// SHA-256 digests in hex; initrd "" expects no initramfs.
type expectedMeasurements struct {
	Version int    `json:"version"`
	Algo    string `json:"algo"`
	Kernel  string `json:"kernel"`
	Initrd  string `json:"initrd"`
	Cmdline string `json:"cmdline"`
}

// maxExpectedFile bounds an expected-measurements file.
const maxExpectedFile = 64 << 10

func expectedFrom(m hypercall.MeasuredBoot) expectedMeasurements {
	e := expectedMeasurements{Version: 1, Algo: "sha256", Kernel: hex.EncodeToString(m.Kernel[:]), Cmdline: hex.EncodeToString(m.Cmdline[:])}
	if m.Initrd != ([32]byte{}) {
		e.Initrd = hex.EncodeToString(m.Initrd[:])
	}
	return e
}

// loadExpected reads and checks an expected-measurements file.
func loadExpected(path string) (*expectedMeasurements, error) {
	b, err := readFile("expected-measurements file", path, maxExpectedFile)
	if err != nil {
		return nil, err
	}
	var e expectedMeasurements
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("%s: %v (write it with pvisor measure)", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: more than one JSON value", path)
	}
	if e.Version != 1 || e.Algo != "sha256" {
		return nil, fmt.Errorf("%s: version %d, algorithm %q: this pvisor reads version 1, sha256", path, e.Version, e.Algo)
	}
	for _, f := range []struct{ name, v string }{{"kernel", e.Kernel}, {"initrd", e.Initrd}, {"cmdline", e.Cmdline}} {
		if f.v == "" && f.name == "initrd" {
			continue
		}
		if d, err := hex.DecodeString(f.v); err != nil || len(d) != 32 {
			return nil, fmt.Errorf("%s: %s %q is not a SHA-256 digest (64 hex digits)", path, f.name, f.v)
		}
	}
	return &e, nil
}

// check compares a boot's measurement with the expected one and names
// every difference.
func (e *expectedMeasurements) check(m hypercall.MeasuredBoot) error {
	got := expectedFrom(m)
	var diffs []string
	cmp := func(what, want, have string) {
		if !strings.EqualFold(want, have) {
			show := func(s string) string {
				if s == "" {
					return "none"
				}
				return s
			}
			diffs = append(diffs, fmt.Sprintf("%s measures %s, expected %s", what, show(have), show(want)))
		}
	}
	cmp("the kernel", e.Kernel, got.Kernel)
	cmp("the initramfs", e.Initrd, got.Initrd)
	cmp("the command line", e.Cmdline, got.Cmdline)
	if len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

// runMeasure is `pvisor measure`.
func runMeasure(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kernel := fs.String("kernel", "", "guest kernel")
	initrd := fs.String("initrd", "", "initramfs image")
	cmdline := fs.String("cmdline", "", "kernel command line, exactly as pvisor run will be given it")
	out := fs.String("o", "", "write to this new file (mode 0644) instead of standard output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *kernel == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: pvisor measure --kernel K [--initrd I] [--cmdline S] [-o FILE]")
		return 2
	}
	const limit = 1 << 30
	k, err := readFile("kernel", *kernel, limit)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor measure: %v\n", err)
		return 2
	}
	var ird []byte
	if *initrd != "" {
		if ird, err = readFile("initrd", *initrd, limit); err != nil {
			fmt.Fprintf(stderr, "pvisor measure: %v\n", err)
			return 2
		}
	}
	b, _ := json.MarshalIndent(expectedFrom(hv.Measure(k, ird, *cmdline)), "", "  ")
	b = append(b, '\n')
	if *out == "" {
		stdout.Write(b)
		return 0
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "pvisor measure: %v\n", err)
		return 1
	}
	return 0
}
