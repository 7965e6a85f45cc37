package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/mm"
)

// `pvisor bench snapshot`: snapshot and restore of the patched Linux guest
// in pv mode with 256 MiB of memory, 64 MiB of it resident, paused at a
// shell loop: the time to write the snapshot to a file (fsynced), its
// size, and the time to restore it from the file until the VM is ready to
// run its first instruction, plain (SHA-256 digest) and encrypted
// (AES-256-GCM), the forms interleaved over the rounds.

type snapForm struct {
	name string
	opt  snapshot.Options
	key  *snapshot.Key
}

func runBenchSnapshot(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kernel := fs.String("kernel", "build/guest/vmlinux-pv", "the patched kernel (pv mode)")
	initrd := fs.String("initrd", "build/guest/initramfs.cpio.gz", "initramfs")
	rounds := fs.Int("rounds", 5, "rounds; the table shows medians")
	dir := fs.String("dir", "", "directory for the snapshot files (default: a temporary directory)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *rounds < 1 || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: pvisor bench snapshot [--rounds N] [--kernel K] [--initrd I] [--dir D]")
		return 2
	}
	k, err := readFile("kernel", *kernel, linuxBenchMem)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor bench snapshot: %v: run `make guest-pv`\n", err)
		return 2
	}
	rd, err := readFile("initrd", *initrd, linuxBenchMem)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor bench snapshot: %v: run `make guest-pv`\n", err)
		return 2
	}
	d := *dir
	if d == "" {
		if d, err = os.MkdirTemp("", "pvisor-bench-snapshot"); err != nil {
			fmt.Fprintf(stderr, "pvisor bench snapshot: %v\n", err)
			return 1
		}
		defer os.RemoveAll(d)
	}
	// 44 MiB of random bytes in the initramfs's tmpfs, over the ~20 MiB
	// the booted guest uses: 64 MiB resident.
	cmd := "head -c 46137344 /dev/urandom > /fill && echo bench-ready && while :; do sleep 1; done"
	out := &tailWriter{}
	vm, err := hv.New(hv.Config{Kernel: k, Initrd: rd, MemBytes: linuxBenchMem, Mode: cpu.ModePV, Budget: mm.NewBudget(1 << 30),
		Console: out, Name: "bench", Cmdline: "console=hvc0 panic=-1 quiet pvisor.cmd=" + base64.StdEncoding.EncodeToString([]byte(cmd))})
	if err != nil {
		fmt.Fprintf(stderr, "pvisor bench snapshot: %v\n", err)
		return 1
	}
	done := make(chan hv.ExitStatus, 1)
	go func() { done <- vm.Run() }()
	defer func() {
		vm.Stop(0, "end of benchmark")
		<-done
	}()
	fmt.Fprintln(stderr, "pvisor bench snapshot: booting the guest ...")
	for start := time.Now(); !strings.Contains(out.String(), "bench-ready"); time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Minute || vm.Stopped() {
			fmt.Fprintf(stderr, "pvisor bench snapshot: the guest did not get ready; console ends:\n%s\n", out.String())
			return 1
		}
	}
	if err := vm.Pause(); err != nil {
		fmt.Fprintf(stderr, "pvisor bench snapshot: %v\n", err)
		return 1
	}
	kb := make([]byte, 32)
	rand.Read(kb)
	key, _ := snapshot.KeyFromBytes(kb)
	forms := []snapForm{
		{"plain", snapshot.Options{}, nil},
		{"encrypted", snapshot.Options{Protection: snapshot.Encrypted, Key: key}, key},
	}
	snapT := make([][]time.Duration, len(forms))
	restT := make([][]time.Duration, len(forms))
	sizes := make([]int64, len(forms))
	for r := 0; r < *rounds; r++ {
		for i, f := range forms {
			p := filepath.Join(d, f.name+".snap")
			t0 := time.Now()
			if err := writeSnapFile(vm, p, f); err != nil {
				fmt.Fprintf(stderr, "pvisor bench snapshot: %s: %v\n", f.name, err)
				return 1
			}
			snapT[i] = append(snapT[i], time.Since(t0))
			if fi, err := os.Stat(p); err == nil {
				sizes[i] = fi.Size()
			}
			t0 = time.Now()
			rv, err := restoreSnapFile(p, f)
			restT[i] = append(restT[i], time.Since(t0))
			if err != nil {
				fmt.Fprintf(stderr, "pvisor bench snapshot: %s: restore: %v\n", f.name, err)
				return 1
			}
			rv.Stop(0, "end of benchmark")
			rv.Run()
		}
	}
	fmt.Fprintf(stdout, "pv Linux 6.12, %d MiB of memory (about 64 MiB of it non-zero), paused; medians of %d rounds, forms interleaved\n",
		vm.MemStats().Reserved>>20, *rounds)
	fmt.Fprintf(stdout, "snapshot: to a file, fsynced; restore: from the file until the VM is ready to run (first instruction next)\n\n")
	fmt.Fprintf(stdout, "%-10s %12s %12s %10s\n", "form", "snapshot", "restore", "size")
	for i, f := range forms {
		fmt.Fprintf(stdout, "%-10s %12v %12v %7.1f MiB\n", f.name, medianDur(snapT[i]).Round(100*time.Microsecond),
			medianDur(restT[i]).Round(100*time.Microsecond), float64(sizes[i])/(1<<20))
	}
	fmt.Fprintln(stdout, "\nanchor: Firecracker publishes a full snapshot of a 2-vCPU, 256 MiB microVM in about 180 ms; goals here: snapshot <= 100 ms, restore <= 20 ms unencrypted")
	return 0
}

func writeSnapFile(vm *hv.VM, path string, f snapForm) error {
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := vm.Snapshot(w, hv.SnapshotOptions{File: f.opt, LeavePaused: true}); err != nil {
		w.Close()
		return err
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func restoreSnapFile(path string, f snapForm) (*hv.VM, error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return hv.Restore(r, hv.RestoreConfig{Budget: mm.NewBudget(1 << 30), Key: f.key})
}

func medianDur(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
