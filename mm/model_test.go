package mm

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// modelVM is the test's own account of one VM, against which the
// Reservation is checked.
type modelVM struct {
	r      *Reservation
	id     int
	tag    byte   // the byte this VM writes
	in     []bool // populated frames
	shadow []byte // expected contents of populated frames
}

func (m *modelVM) populated(gpa, n uint64) bool {
	end := gpa + n
	if n == 0 || end < gpa || end > uint64(len(m.shadow)) {
		return n == 0 && end >= gpa && end <= uint64(len(m.shadow))
	}
	for g := gpa / FrameSize; g <= (end-1)/FrameSize; g++ {
		if !m.in[g] {
			return false
		}
	}
	return true
}

// checkFrames compares populated frames [first, last] with the shadow.
func (m *modelVM) checkFrames(t *testing.T, first, last uint64) {
	t.Helper()
	for g := first; g <= last && g < uint64(len(m.in)); g++ {
		if !m.in[g] {
			continue
		}
		s, ok := m.r.Slice(g*FrameSize, FrameSize)
		if !ok {
			t.Fatalf("VM %d: Slice of populated gfn %d fails", m.id, g)
		}
		if !bytes.Equal(s, m.shadow[g*FrameSize:(g+1)*FrameSize]) {
			t.Fatalf("VM %d: gfn %d does not hold what the VM wrote", m.id, g)
		}
	}
}

// TestBoundsProperty applies random operations (create, destroy, balloon
// out and in, writes through Slice and through RAM, out-of-range requests)
// to several VMs sharing one budget and checks after each that no VM's
// resident memory exceeds its reservation, the total stays within the
// budget, every host frame has at most one owner, frames given to a VM
// read as zero, and no VM sees bytes it did not write.
func TestBoundsProperty(t *testing.T) {
	ops := 100_000
	if testing.Short() {
		ops = 10_000
	}
	const (
		budget    = 512 << 10 // 128 frames
		maxFrames = 32
		maxVMs    = 6
	)
	rng := rand.New(rand.NewPCG(6, 1))
	b := NewBudget(budget)
	var vms []*modelVM
	zero := make([]byte, FrameSize)
	owner := make(map[HFN]int)     // host frames owned now, by VM id
	everOwned := make(map[HFN]int) // host frames ever written, by VM id
	nextID := 0
	var refused, reusedFrames, faults int
	defer func() {
		for _, m := range vms {
			m.r.Release()
		}
	}()

	for op := 0; op < ops; op++ {
		var m *modelVM
		if len(vms) > 0 {
			m = vms[rng.IntN(len(vms))]
		}
		switch k := rng.IntN(100); {
		case k < 10 || m == nil: // create
			if len(vms) == maxVMs {
				break
			}
			frames := 1 + rng.Uint64N(maxFrames)
			before := b.Stats()
			r, err := b.Reserve(frames * FrameSize)
			if before.Free < frames*FrameSize {
				if err == nil {
					t.Fatalf("op %d: reservation of %d frames admitted with %d bytes free", op, frames, before.Free)
				}
				if b.Stats() != before {
					t.Fatalf("op %d: refused reservation changed the accounting", op)
				}
				refused++
				break
			}
			if err != nil {
				t.Fatalf("op %d: %v", op, err)
			}
			nextID++
			m = &modelVM{r: r, id: nextID, tag: byte(nextID%255 + 1), in: make([]bool, frames), shadow: make([]byte, frames*FrameSize)}
			for g := range m.in {
				m.in[g] = true
				s, ok := r.Slice(uint64(g)*FrameSize, FrameSize)
				if !ok || !bytes.Equal(s, zero) {
					t.Fatalf("op %d: new VM's gfn %d is not zero (ok %v)", op, g, ok)
				}
				h, _ := r.Translate(uint64(g))
				if prev, seen := everOwned[h]; seen && prev != m.id {
					reusedFrames++
				}
			}
			vms = append(vms, m)
		case k < 17: // destroy
			m.r.Release()
			if _, ok := m.r.Slice(0, 1); ok {
				t.Fatalf("op %d: Slice after Release", op)
			}
			for i := range vms {
				if vms[i] == m {
					vms = append(vms[:i], vms[i+1:]...)
					break
				}
			}
		case k < 37: // balloon out
			n := uint64(len(m.in))
			first := rng.Uint64N(n)
			count := 1 + rng.Uint64N(min(n-first, 16))
			var want uint64
			for g := first; g < first+count; g++ {
				if m.in[g] {
					want++
				}
				m.in[g] = false
			}
			got, err := m.r.BalloonOut(FrameRange{first, count})
			if err != nil || got != want {
				t.Fatalf("op %d: BalloonOut(%d, %d) = %d, %v; want %d", op, first, count, got, err, want)
			}
		case k < 57: // balloon in
			n := uint64(len(m.in))
			first := rng.Uint64N(n)
			count := 1 + rng.Uint64N(min(n-first, 16))
			var want uint64
			for g := first; g < first+count; g++ {
				if !m.in[g] {
					want++
					m.in[g] = true
					clear(m.shadow[g*FrameSize : (g+1)*FrameSize])
				}
			}
			got, err := m.r.BalloonIn(FrameRange{first, count})
			if err != nil || got != want {
				t.Fatalf("op %d: BalloonIn(%d, %d) = %d, %v; want %d", op, first, count, got, err, want)
			}
			m.checkFrames(t, first, first+count-1)
		case k < 82: // write through Slice, sometimes across holes or the end
			size := uint64(len(m.shadow))
			gpa := rng.Uint64N(size + 2*FrameSize)
			n := rng.Uint64N(2 * FrameSize)
			s, ok := m.r.Slice(gpa, n)
			if want := m.populated(gpa, n); ok != want {
				t.Fatalf("op %d: VM %d Slice(%#x, %#x) = %v; want %v", op, m.id, gpa, n, ok, want)
			}
			if !ok {
				faults++
				break
			}
			for i := range s {
				s[i] = m.tag
			}
			copy(m.shadow[gpa:gpa+n], s)
			if n > 0 {
				for g := gpa / FrameSize; g <= (gpa+n-1)/FrameSize; g++ {
					h, _ := m.r.Translate(g)
					everOwned[h] = m.id
				}
				m.checkFrames(t, gpa/FrameSize, (gpa+n-1)/FrameSize)
			}
		case k < 90: // an engine writes a ballooned-out frame through RAM
			g := rng.Uint64N(uint64(len(m.in)))
			if m.in[g] {
				break
			}
			off := rng.Uint64N(FrameSize)
			m.r.RAM()[g*FrameSize+off] = m.tag
			everOwned[m.r.base+HFN(g)] = m.id
		case k < 95: // balloon requests beyond the reservation are refused whole
			n := uint64(len(m.in))
			fr := []FrameRange{{rng.Uint64N(n), 1}, {n - rng.Uint64N(2), 2 + rng.Uint64N(4)}}
			before := m.r.Stats()
			if _, err := m.r.BalloonOut(fr...); err == nil {
				t.Fatalf("op %d: BalloonOut(%v) beyond %d frames accepted", op, fr, n)
			}
			if _, err := m.r.BalloonIn(fr...); err == nil {
				t.Fatalf("op %d: BalloonIn(%v) beyond %d frames accepted", op, fr, n)
			}
			if m.r.Stats() != before {
				t.Fatalf("op %d: refused balloon call changed the accounting", op)
			}
		default: // read back a random VM's memory
			m.checkFrames(t, 0, uint64(len(m.in))-1)
		}

		// Invariants.
		if err := b.Check(); err != nil {
			t.Fatalf("op %d: %v", op, err)
		}
		hs := b.Stats()
		var reserved, resident uint64
		clear(owner)
		for _, v := range vms {
			vs := v.r.Stats()
			var in uint64
			for g, p := range v.in {
				h, ok := v.r.Translate(uint64(g))
				if ok != p {
					t.Fatalf("op %d: VM %d gfn %d populated %v; model says %v", op, v.id, g, ok, p)
				}
				if !ok {
					continue
				}
				in++
				if o, dup := owner[h]; dup {
					t.Fatalf("op %d: host frame %#x owned by VMs %d and %d", op, h, o, v.id)
				}
				owner[h] = v.id
			}
			if vs.Resident != in*FrameSize || vs.Resident > vs.Reserved || vs.Reserved != uint64(len(v.in))*FrameSize {
				t.Fatalf("op %d: VM %d stats %+v; model has %d of %d frames resident", op, v.id, vs, in, len(v.in))
			}
			reserved += vs.Reserved
			resident += vs.Resident
		}
		if hs.Reserved != reserved || hs.Resident != resident || hs.Reserved > hs.Total || hs.Total != budget ||
			hs.VMs != len(vms) || hs.Free != hs.Total-hs.Reserved {
			t.Fatalf("op %d: host stats %+v; VMs hold %d reserved, %d resident", op, hs, reserved, resident)
		}
	}
	t.Logf("%d ops: %d VMs created, %d refused by the budget, %d faulting accesses, %d host frames reused by a new VM and read as zero",
		ops, nextID, refused, faults, reusedFrames)
}
