//go:build linux && amd64

package jit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// mapping is one line of /proc/self/maps.
type mapping struct {
	lo, hi uintptr
	perms  string
	name   string
}

func readMaps(t testing.TB) []mapping {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ms []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		lo, hi, ok := strings.Cut(fs[0], "-")
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("maps line %q", sc.Text())
		}
		m := mapping{lo: uintptr(l), hi: uintptr(h), perms: fs[1]}
		if len(fs) > 5 {
			m.name = fs[5]
		}
		ms = append(ms, m)
	}
	return ms
}

// checkNoWX fails when any mapping of the process is writable and
// executable, and returns the permissions of the pages at addr.
func checkNoWX(t testing.TB, addr uintptr) string {
	t.Helper()
	perms := ""
	for _, m := range readMaps(t) {
		if len(m.perms) >= 3 && m.perms[1] == 'w' && m.perms[2] == 'x' {
			t.Errorf("mapping %#x-%#x %s %s is writable and executable", m.lo, m.hi, m.perms, m.name)
		}
		if addr >= m.lo && addr < m.hi {
			perms = m.perms
		}
	}
	return perms
}

// loopCode is a translated-code leaf over ctx = *loopCtx: acc = acc + i,
// then acc ^= 0x5a5a5a5a, for i = n down to 1; it stores acc and returns
// exit code 7.
func loopCode() []byte {
	var a Asm
	a.Load(RCX, RDI, 0)
	a.Load(RAX, RDI, 8)
	top := a.Pos()
	a.AluRR(ADD, RAX, RCX)
	a.AluRI(XOR, RAX, 0x5a5a5a5a)
	a.AluRI(SUB, RCX, 1)
	a.Jcc(CondNE, top)
	a.Store(RDI, 16, RAX)
	a.MovImm32(RAX, 7)
	a.Ret()
	return a.B
}

type loopCtx struct{ n, acc, out uint64 }

func loopRef(n, acc uint64) uint64 {
	for i := n; i > 0; i-- {
		acc = (acc + i) ^ 0x5a5a5a5a
	}
	return acc
}

func sealedLoop(t testing.TB) (*Arena, uintptr) {
	t.Helper()
	a, err := NewArena(4 * PageSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	first, b, err := a.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, loopCode())
	if err := a.Seal(first, 1); err != nil {
		t.Fatal(err)
	}
	return a, a.Addr(first, 0)
}

// TestArenaNeverWX: while code is written, sealed, run, unsealed and
// rewritten, no mapping of the process is writable and executable, and
// the Arena's pages are exactly what their state says.
func TestArenaNeverWX(t *testing.T) {
	a, err := NewArena(3 * PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	lo, _ := a.Bounds()
	if p := checkNoWX(t, lo); p != "---p" {
		t.Errorf("reserved page: %s, want ---p", p)
	}
	first, b, err := a.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, loopCode())
	if p := checkNoWX(t, a.Addr(first, 0)); p != "rw-p" {
		t.Errorf("allocated page: %s, want rw-p", p)
	}
	if err := a.Seal(first, 1); err != nil {
		t.Fatal(err)
	}
	if p := checkNoWX(t, a.Addr(first, 0)); p != "r-xp" {
		t.Errorf("sealed page: %s, want r-xp", p)
	}
	ctx := &loopCtx{n: 1000, acc: 3}
	if code := Enter(a.Addr(first, 0), unsafe.Pointer(ctx)); code != 7 || ctx.out != loopRef(1000, 3) {
		t.Errorf("exit %d, out %#x; want 7, %#x", code, ctx.out, loopRef(1000, 3))
	}
	// Rewrite: unsealed pages are not executable.
	b, err = a.Unseal(first, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p := checkNoWX(t, a.Addr(first, 0)); p != "rw-p" {
		t.Errorf("unsealed page: %s, want rw-p", p)
	}
	b[len(loopCode())-5] = 9 // the exit code's immediate (MOV EAX, imm32; RET)
	if err := a.Seal(first, 1); err != nil {
		t.Fatal(err)
	}
	if code := Enter(a.Addr(first, 0), unsafe.Pointer(ctx)); code != 9 {
		t.Errorf("rewritten code returned %d, want 9", code)
	}
	// State rules: no double seal, no unseal of a writable page, nothing
	// past the allocated pages, no allocation past the end.
	if err := a.Seal(first, 1); err == nil {
		t.Error("sealed a sealed page")
	}
	f2, _, err := a.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Unseal(f2, 1); err == nil {
		t.Error("unsealed a writable page")
	}
	if err := a.Seal(f2, 2); err == nil {
		t.Error("sealed a page never allocated")
	}
	if _, _, err := a.Alloc(2); err != ErrArenaFull {
		t.Errorf("allocating past the end: %v, want ErrArenaFull", err)
	}
	if _, _, err := a.Alloc(0); err == nil {
		t.Error("allocated 0 pages")
	}
}

// TestGoRuntimeAroundEnter runs translated loops of about 20 ms each on
// several goroutines while the GC runs in a loop, the CPU profiler takes
// samples (SIGPROF in translated code), and spinning goroutines make the
// scheduler preempt (SIGURG in translated code). Every result must be
// exact and the process must not crash.
func TestGoRuntimeAroundEnter(t *testing.T) {
	_, code := sealedLoop(t)
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { // the GC, and garbage for it
		defer bg.Done()
		var keep [][]byte
		for {
			select {
			case <-stop:
				return
			default:
			}
			keep = append(keep, make([]byte, 64<<10))
			if len(keep) > 64 {
				keep = keep[:0]
			}
			runtime.GC()
		}
	}()
	go func() { // a spinner: the scheduler preempts the loops for it
		defer bg.Done()
		x := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < 1e5; i++ {
				x += i
			}
		}
	}()
	const n = 20_000_000
	want := loopRef(n, 1)
	deadline := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runs := 0; time.Now().Before(deadline) || runs < 3; runs++ {
				ctx := &loopCtx{n: n, acc: 1}
				if c := Enter(code, unsafe.Pointer(ctx)); c != 7 || ctx.out != want {
					errs <- fmt.Errorf("run %d: exit %d, out %#x; want 7, %#x", runs, c, ctx.out, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkEnter is the cost of one call into translated code and back.
func BenchmarkEnter(b *testing.B) {
	_, code := sealedLoop(b)
	ctx := &loopCtx{n: 1, acc: 0}
	for b.Loop() {
		Enter(code, unsafe.Pointer(ctx))
	}
}
