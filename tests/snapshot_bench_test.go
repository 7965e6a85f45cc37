package tests

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/mm"
)

// BenchmarkSnapshotLinux measures Snapshot and Restore of the patched
// Linux guest in pv mode with 256 MiB of memory, 64 MiB of it resident
// (44 MiB of random bytes written to its initramfs's tmpfs over the ~20
// MiB it uses after boot), paused at a shell prompt: snapshot into memory
// (VM already paused: the sections and the memory scan), and restore from
// memory until the VM is ready to run, plain (SHA-256 digest form) and
// encrypted (AES-256-GCM with a key file's key). The MiB metric is the
// snapshot's size (the non-zero pages and the state). Run with
//
//	go test ./tests -run '^$' -bench BenchmarkSnapshotLinux -benchtime 5x
func BenchmarkSnapshotLinux(b *testing.B) {
	vmlinux, _, initrd := pvGuest(b)
	out := &syncBuffer{}
	cfg := linuxConfig(b, vmlinux, initrd, cpu.ModePV, "hvc0",
		"head -c 46137344 /dev/urandom > /fill && echo bench-ready && while :; do sleep 1; done", out)
	vm, err := hv.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan hv.ExitStatus, 1)
	go func() { done <- vm.Run() }()
	defer func() {
		vm.Stop(0, "end of benchmark")
		<-done
	}()
	if !waitFor(10*time.Minute, func() bool { return strings.Contains(out.String(), "bench-ready") }) {
		b.Fatalf("the guest did not get ready:\n%s", tail(out.String(), 2000))
	}
	if err := vm.Pause(); err != nil {
		b.Fatal(err)
	}
	key, err := snapshot.KeyFromBytes(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	forms := []struct {
		name string
		opt  snapshot.Options
		key  *snapshot.Key
	}{
		{"plain", snapshot.Options{}, nil},
		{"encrypted", snapshot.Options{Protection: snapshot.Encrypted, Key: key}, key},
	}
	for _, f := range forms {
		var snap bytes.Buffer
		b.Run("snapshot/"+f.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				snap.Reset()
				if err := vm.Snapshot(&snap, hv.SnapshotOptions{File: f.opt, LeavePaused: true}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(snap.Len())/(1<<20), "MiB")
		})
		b.Run("restore/"+f.name, func(b *testing.B) {
			budget := mm.NewBudget(1 << 30)
			for i := 0; i < b.N; i++ {
				v, err := hv.Restore(bytes.NewReader(snap.Bytes()), hv.RestoreConfig{Budget: budget, Key: f.key})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				v.Stop(0, "end of benchmark")
				v.Run()
				b.StartTimer()
			}
		})
	}
}
