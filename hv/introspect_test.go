package hv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// incGuest increments the quadword at 0x200000 forever:
// inc qword [0x200000]; jmp back.
var incGuest = []byte{0x48, 0xff, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0xeb, 0xf6}

const (
	introMem = 16 << 20
	introBuf = 0x400000 // the monitor's buffer: free RAM of a 16 MiB VM
	incAddr  = 0x200000
	incEntry = 0x101000 // elfImage's entry
)

// newIntroVM makes a pv VM; one that the test does not run is stopped and
// its memory released at cleanup.
func newIntroVM(t *testing.T, name string, guest []byte, budget *mm.Budget, s *sched.Scheduler) *VM {
	t.Helper()
	vm, err := New(Config{Kernel: elfImage(guest), MemBytes: introMem, Mode: cpu.ModePV, Budget: budget, Name: name, Sched: s})
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

func releaseUnrun(t *testing.T, vms ...*VM) {
	t.Cleanup(func() {
		for _, vm := range vms {
			vm.Stop(0, "end of test")
			vm.releaseIntrospection()
			vm.res.Release()
		}
	})
}

// introErrs is what memmap, read and vcpu answer for handle.
func introErrs(h *hcalls, handle uint64) [3]hypercall.Errno {
	return [3]hypercall.Errno{
		errOf(h.IntrospectMemmap(handle, introBuf, 8)),
		errOf(h.IntrospectRead(handle, 0x100000, introBuf, 8)),
		errOf(h.IntrospectVCPU(handle, 0, introBuf)),
	}
}

func all3(e hypercall.Errno) [3]hypercall.Errno { return [3]hypercall.Errno{e, e, e} }

// readTarget reads n bytes of the target at gpa through the monitor.
func readTarget(t *testing.T, m *VM, handle, gpa, n uint64) []byte {
	t.Helper()
	h := &m.vcpus[0].hc
	got, err := h.IntrospectRead(handle, gpa, introBuf, n)
	if err != 0 || got != n {
		t.Fatalf("introspect_read(%d, %#x, %d): %d, %v", handle, gpa, n, got, err)
	}
	b, _ := m.guest(introBuf, n)
	return append([]byte(nil), b...)
}

// vcpuRegs reads a target vCPU's published registers through the monitor.
func vcpuRegs(t *testing.T, m *VM, handle, vcpu uint64) (hypercall.IntrospectVCPU, hypercall.Errno) {
	t.Helper()
	var r hypercall.IntrospectVCPU
	if _, err := m.vcpus[0].hc.IntrospectVCPU(handle, vcpu, introBuf); err != 0 {
		return r, err
	}
	b, _ := m.guest(introBuf, 224)
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, &r); err != nil {
		t.Fatal(err)
	}
	return r, 0
}

// TestIntrospectGrants: without a grant every call is -EPERM; a grant
// reads the target's map, memory and registers and nothing of the
// monitor's writes reaches the target; bounds are the target's RAM; a
// revoked handle is -EPERM and never comes back for a new grant; a stop
// ends the grant (-ENOENT) and a stopped VM cannot be granted; grants are
// not transitive.
func TestIntrospectGrants(t *testing.T) {
	budget := mm.NewBudget(1 << 30)
	m := newIntroVM(t, "mon", helloGuest, budget, nil)
	tv := newIntroVM(t, "tgt", helloGuest, budget, nil)
	t2 := newIntroVM(t, "third", helloGuest, budget, nil)
	releaseUnrun(t, m, tv, t2)
	h := &m.vcpus[0].hc

	if n, err := h.IntrospectTargets(introBuf, 16); n != 0 || err != 0 {
		t.Errorf("introspect_targets with no grant: %d, %v; want 0", n, err)
	}
	for _, hd := range []uint64{0, 1, 2, 0xffffffff} {
		if got := introErrs(h, hd); got != all3(hypercall.EPERM) {
			t.Errorf("handle %d with no grant: %v, want -EPERM from every call", hd, got)
		}
	}
	if _, err := Grant(m, m); !errors.Is(err, ErrGrantSelf) {
		t.Errorf("Grant(m, m): %v, want ErrGrantSelf", err)
	}
	h32, err := Grant(m, tv)
	hd := uint64(h32)
	if err != nil || hd != 1 {
		t.Fatalf("Grant: %d, %v", hd, err)
	}
	if _, err := Grant(m, tv); !errors.Is(err, ErrGrantExists) {
		t.Errorf("a second Grant of the pair: %v, want ErrGrantExists", err)
	}

	// introspect_targets: one entry, the target's.
	if n, err := h.IntrospectTargets(introBuf, 16); n != 1 || err != 0 {
		t.Fatalf("introspect_targets: %d, %v", n, err)
	}
	want := hypercall.IntrospectTarget{Handle: 1, VCPUs: 1, MemSize: introMem, Mode: hypercall.IntrospectModePV}
	copy(want.Name[:], "tgt")
	if b, _ := m.guest(introBuf, 88); !bytes.Equal(b, encode(want)) {
		t.Errorf("introspect_targets entry:\n% x\nwant\n% x", b, encode(want))
	}
	if n, err := h.IntrospectTargets(introMem-8, 1); err != hypercall.EFAULT {
		t.Errorf("introspect_targets straddling the end of RAM: %d, %v, want -EFAULT", n, err)
	}
	if n, err := h.IntrospectTargets(introMem-8, 0); n != 1 || err != 0 {
		t.Errorf("introspect_targets with cap 0: %d, %v, want the count and no write", n, err)
	}

	// The memory map is the target's.
	if n, err := h.IntrospectMemmap(hd, introBuf, 64); n != uint64(len(tv.memmap)) || err != 0 {
		t.Fatalf("introspect_memmap: %d, %v", n, err)
	}
	mb := encode(tv.memmap)
	if b, _ := m.guest(introBuf, uint64(len(mb))); !bytes.Equal(b, mb) {
		t.Errorf("introspect_memmap copied % x, want the target's % x", b, mb)
	}

	// A marker at a random address is read; the monitor's copy is its own.
	marker := make([]byte, 16)
	for i := range marker {
		marker[i] = byte(rand.Uint32())
	}
	gpa := 2<<20 + rand.Uint64N(introMem-4<<20)
	tv.guestWrite(gpa, marker)
	if got := readTarget(t, m, hd, gpa, 16); !bytes.Equal(got, marker) {
		t.Fatalf("read at %#x: % x, want the marker % x", gpa, got, marker)
	}
	m.guestWrite(introBuf, make([]byte, 16))
	if b, _ := tv.guest(gpa, 16); !bytes.Equal(b, marker) {
		t.Errorf("the monitor's write to its copy changed the target: % x", b)
	}
	// Negative control: the read really copies the target's current bytes.
	tv.guestWrite(gpa, []byte{0x5a})
	if got := readTarget(t, m, hd, gpa, 1); got[0] != 0x5a {
		t.Errorf("read after the target changed: %#x, want 0x5a", got[0])
	}

	// Bounds: the target's RAM, the read limit, the monitor's buffer.
	for _, tc := range []struct {
		name        string
		gpa, buf, n uint64
		want        hypercall.Errno
	}{
		{"whole limit", 0, introBuf, hypercall.IntrospectReadMax, 0},
		{"to the end of RAM", introMem - 64, introBuf, 64, 0},
		{"empty at the end", introMem, introBuf, 0, 0},
		{"over the limit", 0, introBuf, hypercall.IntrospectReadMax + 1, hypercall.EINVAL},
		{"straddling the end", introMem - 8, introBuf, 16, hypercall.EINVAL},
		{"beyond RAM", introMem, introBuf, 8, hypercall.EINVAL},
		{"far", 1 << 40, introBuf, 8, hypercall.EINVAL},
		{"wrapping", ^uint64(0) - 3, introBuf, 8, hypercall.EINVAL},
		{"buffer outside the monitor", 0, introMem - 4, 8, hypercall.EFAULT},
		{"buffer wrapping", 0, ^uint64(0) - 3, 8, hypercall.EFAULT},
	} {
		n, err := h.IntrospectRead(hd, tc.gpa, tc.buf, tc.n)
		if err != tc.want || (err == 0 && n != tc.n) {
			t.Errorf("read %s (gpa %#x, buf %#x, len %d): %d, %v; want %v", tc.name, tc.gpa, tc.buf, tc.n, n, err, tc.want)
		}
	}

	// A frame the target gave back reads as zeros, beside one it kept.
	page := gpa &^ (hypercall.PageSize - 1)
	tv.guestWrite(page-8, bytes.Repeat([]byte{0x77}, 8))
	var gfn [8]byte
	binary.LittleEndian.PutUint64(gfn[:], page/hypercall.PageSize)
	tv.guestWrite(0x300000, gfn[:])
	if n, err := tv.vcpus[0].hc.BalloonOut(0x300000, 1); n != 1 || err != 0 {
		t.Fatalf("balloon_out in the target: %d, %v", n, err)
	}
	m.guestWrite(introBuf, bytes.Repeat([]byte{0xee}, 24))
	wantHole := append(bytes.Repeat([]byte{0x77}, 8), make([]byte, 16)...)
	if got := readTarget(t, m, hd, page-8, 24); !bytes.Equal(got, wantHole) {
		t.Errorf("read across a ballooned-out frame: % x, want % x", got, wantHole)
	}

	// Registers: none before the target has run; then the published copy.
	if _, err := vcpuRegs(t, m, hd, 0); err != hypercall.EAGAIN {
		t.Errorf("introspect_vcpu before the target ran: %v, want -EAGAIN", err)
	}
	if _, err := vcpuRegs(t, m, hd, 1); err != hypercall.EINVAL {
		t.Errorf("introspect_vcpu of vCPU 1 of a 1-vCPU target: %v, want -EINVAL", err)
	}
	tv.vcpus[0].publish() // as Run does before the first slice
	r, err2 := vcpuRegs(t, m, hd, 0)
	wantRegs := hypercall.IntrospectVCPU{GPR: tv.bootRegs.GPR, RIP: tv.bootRegs.RIP, RFLAGS: tv.bootRegs.RFLAGS,
		CR0: tv.bootSRegs.CR0, CR3: tv.bootSRegs.CR3, CR4: tv.bootSRegs.CR4, EFER: tv.bootSRegs.EFER,
		Seq: 1, CS: uint32(tv.bootSRegs.CS.Selector), SS: uint32(tv.bootSRegs.SS.Selector)}
	if d := cmp.Diff(wantRegs, r); err2 != 0 || d != "" {
		t.Errorf("introspect_vcpu: %v; registers (-want +got):\n%s", err2, d)
	}
	if errOf(h.IntrospectVCPU(hd, 0, introMem-8)) != hypercall.EFAULT {
		t.Error("introspect_vcpu into a buffer straddling the end of RAM: want -EFAULT")
	}

	// Not transitive: the target's own grant gives the monitor nothing.
	th, err := Grant(tv, t2)
	if err != nil || th != 1 {
		t.Fatalf("Grant(tgt, third): %d, %v", th, err)
	}
	if got := introErrs(h, 2); got != all3(hypercall.EPERM) {
		t.Errorf("the monitor's handle 2 while only the target holds a grant: %v, want -EPERM", got)
	}
	if n, _ := h.IntrospectTargets(introBuf, 16); n != 1 {
		t.Errorf("the monitor lists %d grants, want its own 1", n)
	}

	// Revoke: -EPERM at once, and the handle is never given again.
	if err := Revoke(m, tv); err != nil {
		t.Fatal(err)
	}
	if got := introErrs(h, hd); got != all3(hypercall.EPERM) {
		t.Errorf("after revoke: %v, want -EPERM from every call", got)
	}
	if n, _ := h.IntrospectTargets(introBuf, 16); n != 0 {
		t.Errorf("after revoke the monitor lists %d grants", n)
	}
	if err := Revoke(m, tv); !errors.Is(err, ErrNoGrant) {
		t.Errorf("a second revoke: %v, want ErrNoGrant", err)
	}
	h32, err = Grant(m, tv)
	hd2 := uint64(h32)
	if err != nil || hd2 == hd {
		t.Fatalf("a new grant: handle %d (the revoked one was %d), %v", hd2, hd, err)
	}
	if got := introErrs(h, hd); got != all3(hypercall.EPERM) {
		t.Errorf("the revoked handle after a new grant: %v, want -EPERM", got)
	}
	if got := readTarget(t, m, hd2, page-8, 8); !bytes.Equal(got, wantHole[:8]) {
		t.Errorf("the new handle reads % x, want % x", got, wantHole[:8])
	}

	// The target stops: the grant ends with it and cannot be made again.
	tv.Stop(0, "end of target")
	if got := introErrs(h, hd2); got != all3(hypercall.ENOENT) {
		t.Errorf("after the target stopped: %v, want -ENOENT from every call", got)
	}
	if got := introErrs(h, hd); got != all3(hypercall.EPERM) {
		t.Errorf("the revoked handle after the target stopped: %v, want -EPERM", got)
	}
	if n, _ := h.IntrospectTargets(introBuf, 16); n != 0 {
		t.Errorf("the monitor lists %d grants after its target stopped", n)
	}
	if _, err := Grant(m, tv); !errors.Is(err, ErrGrantStopped) {
		t.Errorf("Grant to a stopped target: %v, want ErrGrantStopped", err)
	}
	if w := t2.Watchers(); len(w) != 0 {
		t.Errorf("the stopped VM's own grant survived it: watchers of third %v", w)
	}

	// The monitor stops: its grants end.
	if _, err := Grant(m, t2); err != nil {
		t.Fatal(err)
	}
	m.Stop(0, "end of monitor")
	if w, g := t2.Watchers(), m.Grants(); len(w) != 0 || len(g) != 0 {
		t.Errorf("after the monitor stopped: watchers %v, grants %v", w, g)
	}
	if _, err := Grant(m, t2); !errors.Is(err, ErrGrantStopped) {
		t.Errorf("Grant to a stopped monitor: %v, want ErrGrantStopped", err)
	}
}

// TestIntrospectGrantLimit: a monitor holds at most INTROSPECT_MAX_GRANTS
// grants, and handles keep counting after revokes.
func TestIntrospectGrantLimit(t *testing.T) {
	budget := mm.NewBudget(1 << 30)
	m := newIntroVM(t, "mon", helloGuest, budget, nil)
	vms := []*VM{m}
	var targets []*VM
	for i := 0; i <= hypercall.IntrospectMaxGrants; i++ {
		tv, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 4 << 20, Mode: cpu.ModePV, Budget: budget})
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tv)
		vms = append(vms, tv)
	}
	releaseUnrun(t, vms...)
	for i, tv := range targets[:hypercall.IntrospectMaxGrants] {
		if hd, err := Grant(m, tv); err != nil || hd != uint32(i+1) {
			t.Fatalf("grant %d: handle %d, %v", i, hd, err)
		}
	}
	last := targets[hypercall.IntrospectMaxGrants]
	if _, err := Grant(m, last); !errors.Is(err, ErrGrantLimit) {
		t.Fatalf("grant beyond the limit: %v, want ErrGrantLimit", err)
	}
	if err := Revoke(m, targets[0]); err != nil {
		t.Fatal(err)
	}
	if hd, err := Grant(m, last); err != nil || hd != hypercall.IntrospectMaxGrants+1 {
		t.Errorf("grant after a revoke: handle %d, %v; want %d", hd, err, hypercall.IntrospectMaxGrants+1)
	}
}

// walk translates va through the target's 4-level page tables from cr3,
// reading them only through the monitor's introspect_read, as the guest
// monitor does.
func walk(t *testing.T, m *VM, hd, cr3, va uint64) uint64 {
	t.Helper()
	const addrMask = 0x000ffffffffff000
	table := cr3 & addrMask
	for level := 3; level >= 0; level-- {
		shift := 12 + 9*uint(level)
		pte := binary.LittleEndian.Uint64(readTarget(t, m, hd, table+(va>>shift&511)*8, 8))
		if pte&1 == 0 {
			t.Fatalf("walk of %#x: level %d entry %#x not present", va, level, pte)
		}
		if level == 0 || (level <= 2 && pte&0x80 != 0) {
			size := uint64(1) << shift
			return pte&addrMask&^(size-1) | va&(size-1)
		}
		table = pte & addrMask
	}
	panic("unreachable")
}

// TestIntrospectRunningTarget: a monitor watches a running target (run
// with -race: the reads of memory and registers race with nothing): the
// published registers advance and stay in the target's loop, its RIP
// translates through its own page tables, the counter it increments is
// seen to grow, and when the target stops, reads in flight end with
// -ENOENT, never a fault of the host.
func TestIntrospectRunningTarget(t *testing.T) {
	budget := mm.NewBudget(1 << 30)
	s := sched.New(sched.Config{Workers: 2})
	s.Start()
	defer s.Stop()
	m := newIntroVM(t, "mon", helloGuest, budget, nil)
	releaseUnrun(t, m)
	tv := newIntroVM(t, "tgt", incGuest, budget, s)
	h32, err := Grant(m, tv)
	if err != nil {
		t.Fatal(err)
	}
	hd := uint64(h32)
	done := make(chan ExitStatus, 1)
	go func() { done <- tv.Run() }()
	defer func() {
		tv.Stop(0, "end of test")
		<-done
	}()

	var r hypercall.IntrospectVCPU
	deadline := time.Now().Add(time.Minute)
	for r.Seq < 3 {
		var e hypercall.Errno
		if r, e = vcpuRegs(t, m, hd, 0); e != 0 && e != hypercall.EAGAIN {
			t.Fatalf("introspect_vcpu: %v", e)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target published %d times in a minute", r.Seq)
		}
		time.Sleep(time.Millisecond)
	}
	if r.RIP < incEntry || r.RIP >= incEntry+uint64(len(incGuest)) || r.CPL != 0 || r.CR3&^0xfff != 0x1000 {
		t.Errorf("registers of the running target: RIP %#x (loop at %#x), CPL %d, CR3 %#x", r.RIP, incEntry, r.CPL, r.CR3)
	}
	if gpa := walk(t, m, hd, r.CR3, r.RIP); gpa != r.RIP {
		t.Errorf("RIP %#x translates to %#x, want the identity map's %#x", r.RIP, gpa, r.RIP)
	}
	c0 := binary.LittleEndian.Uint64(readTarget(t, m, hd, incAddr, 8))
	grew := false
	for end := time.Now().Add(time.Minute); !grew && time.Now().Before(end); time.Sleep(time.Millisecond) {
		grew = binary.LittleEndian.Uint64(readTarget(t, m, hd, incAddr, 8)) > c0
	}
	if !grew {
		t.Fatalf("the target's counter stayed at %d for a minute", c0)
	}

	// Reads race the target's stop and the release of its memory.
	h := &m.vcpus[0].hc
	seen := make(chan hypercall.Errno, 1)
	go func() {
		for {
			_, e1 := h.IntrospectRead(hd, 0, introBuf, hypercall.IntrospectReadMax)
			_, e2 := h.IntrospectVCPU(hd, 0, introBuf)
			if e1 != 0 || e2 != 0 {
				if e1 != e2 && e1 != 0 {
					seen <- e1
				} else {
					seen <- max(e1, e2)
				}
				return
			}
		}
	}()
	tv.Stop(0, "stopped while read")
	st := <-done
	done <- st
	if e := <-seen; e != hypercall.ENOENT {
		t.Errorf("a read racing the stop ended with %v, want -ENOENT", e)
	}
	if got := introErrs(h, hd); got != all3(hypercall.ENOENT) {
		t.Errorf("after the target's memory was released: %v, want -ENOENT", got)
	}
}

// TestIntrospectRevokeWhileReading: reads in a loop while the grant is
// revoked end with -EPERM; after Revoke has returned no read succeeds.
func TestIntrospectRevokeWhileReading(t *testing.T) {
	budget := mm.NewBudget(1 << 30)
	s := sched.New(sched.Config{Workers: 2})
	s.Start()
	defer s.Stop()
	m := newIntroVM(t, "mon", helloGuest, budget, nil)
	releaseUnrun(t, m)
	tv := newIntroVM(t, "tgt", incGuest, budget, s)
	done := make(chan ExitStatus, 1)
	go func() { done <- tv.Run() }()
	defer func() {
		tv.Stop(0, "end of test")
		<-done
	}()
	h := &m.vcpus[0].hc
	for round := 0; round < 20; round++ {
		hd, err := Grant(m, tv)
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		ended := make(chan hypercall.Errno, 1)
		go func() {
			for i := 0; ; i++ {
				_, e := h.IntrospectRead(uint64(hd), 0, introBuf, hypercall.IntrospectReadMax)
				if i == 0 {
					close(started)
				}
				if e != 0 {
					ended <- e
					return
				}
			}
		}()
		<-started
		if err := Revoke(m, tv); err != nil {
			t.Fatal(err)
		}
		if e := <-ended; e != hypercall.EPERM {
			t.Fatalf("round %d: reads during the revoke ended with %v, want -EPERM", round, e)
		}
		if got := introErrs(h, uint64(hd)); got != all3(hypercall.EPERM) {
			t.Fatalf("round %d: after Revoke: %v", round, got)
		}
	}
}

// BenchmarkPublish is what a vCPU pays at the end of every slice to
// publish its registers for introspection.
func BenchmarkPublish(b *testing.B) {
	vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: introMem, Mode: cpu.ModePV, Budget: mm.NewBudget(1 << 30)})
	if err != nil {
		b.Fatal(err)
	}
	defer vm.res.Release()
	v := vm.vcpus[0]
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		v.publish()
	}
}

// BenchmarkIntrospectRead is one INTROSPECT_READ_MAX read by a monitor.
func BenchmarkIntrospectRead(b *testing.B) {
	budget := mm.NewBudget(1 << 30)
	var vms []*VM
	for _, name := range []string{"mon", "tgt"} {
		vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: introMem, Mode: cpu.ModePV, Budget: budget, Name: name})
		if err != nil {
			b.Fatal(err)
		}
		defer vm.res.Release()
		defer vm.Stop(0, "end of benchmark")
		vms = append(vms, vm)
	}
	hd, err := Grant(vms[0], vms[1])
	if err != nil {
		b.Fatal(err)
	}
	h := &vms[0].vcpus[0].hc
	b.SetBytes(hypercall.IntrospectReadMax)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, e := h.IntrospectRead(uint64(hd), uint64(i%200)<<16, introBuf, hypercall.IntrospectReadMax); e != 0 {
			b.Fatal(e)
		}
	}
}
