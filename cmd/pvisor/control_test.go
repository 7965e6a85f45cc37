package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// TestControlSocket runs two spinning test-guest VMs and drives them
// through the control socket: list, a weight and cap change, bad requests
// refused, one VM stopped while the other keeps running.
func TestControlSocket(t *testing.T) {
	kernel := testguestImage(t)
	sc := sched.New(sched.Config{Workers: 1})
	budget := mm.NewBudget(1 << 30)
	var vms []*hv.VM
	for _, name := range []string{"a", "b"} {
		vm, err := hv.New(hv.Config{Kernel: kernel, Cmdline: "spin", MemBytes: 16 << 20, Mode: cpu.ModePV,
			Budget: budget, Name: name, Sched: sc})
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	path := filepath.Join(t.TempDir(), "ctl.sock")
	cs, err := listenControl(path, vms)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := listenControl(path, vms); err == nil {
		t.Error("a second listener on a live socket was allowed")
	}
	sc.Start()
	defer sc.Stop()
	done := make(chan []hv.ExitStatus, 1)
	go func() { done <- hv.RunAll(vms) }()
	defer func() {
		for _, vm := range vms {
			vm.Stop(0, "end of test")
		}
		<-done
	}()
	call := func(req ctlRequest) *ctlReply {
		t.Helper()
		rep, err := ctlCall(path, &req, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	time.Sleep(100 * time.Millisecond)
	rep := call(ctlRequest{Op: "list"})
	if rep.Error != "" || len(rep.VMs) != 2 || rep.VMs[0].Name != "a" || rep.VMs[1].State != "running" {
		t.Fatalf("list: %+v", rep)
	}
	w, c := 700, 30
	if rep := call(ctlRequest{Op: "sched-credit", VM: "a", Weight: &w, Cap: &c}); rep.Error != "" {
		t.Fatalf("sched-credit: %s", rep.Error)
	}
	if st := vms[0].CPUStats(); st.Weight != 700 || st.Cap != 30 {
		t.Errorf("after sched-credit: weight %d cap %d", st.Weight, st.Cap)
	}
	bad := 0
	for _, req := range []ctlRequest{
		{Op: "sched-credit", VM: "a", Weight: &bad},
		{Op: "sched-credit", VM: "a"},
		{Op: "sched-credit", VM: "nosuch", Weight: &w},
		{Op: "reboot", VM: "a"},
	} {
		if rep := call(req); rep.Error == "" {
			t.Errorf("%+v accepted", req)
		}
	}
	if rep := call(ctlRequest{Op: "mem-set", VM: "a", Bytes: 8 << 20}); rep.Error != "" || rep.VMs[0].Target != 8<<20 || rep.VMs[0].Reserved != 16<<20 {
		t.Errorf("mem-set: %+v", rep)
	}
	if rep := call(ctlRequest{Op: "mem-set", VM: "a", Bytes: 32 << 20}); rep.Error == "" {
		t.Error("mem-set above the reservation accepted")
	}
	// Pause a: it shows as paused, uses no CPU over a window in which b
	// runs on, and runs again after resume.
	if rep := call(ctlRequest{Op: "pause", VM: "a"}); rep.Error != "" || rep.VMs[0].State != "paused" {
		t.Fatalf("pause: %+v", rep)
	}
	if rep := call(ctlRequest{Op: "pause", VM: "a"}); rep.Error != "" {
		t.Fatalf("second pause: %s", rep.Error)
	}
	cpuA, cpuB := vms[0].CPUStats().CPU, vms[1].CPUStats().CPU
	for vms[1].CPUStats().CPU < cpuB+50*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
	}
	if rep := call(ctlRequest{Op: "list"}); rep.VMs[0].State != "paused" || rep.VMs[1].State != "running" {
		t.Errorf("list while a is paused: %+v", rep.VMs)
	}
	if got := vms[0].CPUStats(); got.CPU != cpuA || !got.Paused {
		t.Errorf("paused VM used %v of CPU while the other used 50 ms (paused %v)", got.CPU-cpuA, got.Paused)
	}
	if rep := call(ctlRequest{Op: "resume", VM: "a"}); rep.Error != "" || rep.VMs[0].State != "running" {
		t.Fatalf("resume: %+v", rep)
	}
	for vms[0].CPUStats().CPU < cpuA+20*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
	}
	if rep := call(ctlRequest{Op: "stop", VM: "b"}); rep.Error != "" {
		t.Fatalf("stop: %s", rep.Error)
	}
	if rep := call(ctlRequest{Op: "pause", VM: "b"}); rep.Error == "" {
		t.Error("pause of a stopped VM accepted")
	}
	if !vms[1].Stopped() || vms[0].Stopped() {
		t.Errorf("after stop b: a stopped %v, b stopped %v", vms[0].Stopped(), vms[1].Stopped())
	}
}

// TestBenchHypercallExits runs the "pte update" rows of pvisor bench
// hypercall briefly and checks their exit counts, which are the point of
// the comparison: one hypercall in pv, a shadow-MMU fault plus an emulated
// INVLPG in trap mode, none in hwassist.
func TestBenchHypercallExits(t *testing.T) {
	img := testguestImage(t)
	for _, tc := range []struct {
		b     hypercallBench
		exits float64
	}{
		{hypercallBench{"pte update", "ptebatch", cpu.ModePV}, 1},
		{hypercallBench{"pte update", "pte", cpu.ModeTrap}, 2},
		{hypercallBench{"pte update", "pte", cpu.ModeHWAssist}, 0},
	} {
		r, err := measure(img, tc.b, 2000)
		if err != nil {
			t.Fatalf("%v: %v", tc.b.mode, err)
		}
		if r.iters != 2000 || r.exitsPerOp < tc.exits || r.exitsPerOp > tc.exits+0.05 {
			t.Errorf("%s in %v: %d iterations, %.3f exits/op, want %v", tc.b.name, tc.b.mode, r.iters, r.exitsPerOp, tc.exits)
		}
	}
}

// testguestImage builds the test guest with the project's Makefile and
// returns its image.
func testguestImage(t *testing.T) []byte {
	t.Helper()
	if out, err := exec.Command("make", "-s", "-C", "../..", "testguest").CombinedOutput(); err != nil {
		t.Fatalf("make testguest: %v\n%s", err, out)
	}
	img, err := os.ReadFile("../../build/testguest.elf")
	if err != nil {
		t.Fatal(err)
	}
	return img
}
