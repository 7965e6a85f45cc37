package lapic

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pvisor/pvisor/hv/vclock"
)

// fuzzInput reads a fuzzer's bytes as operations; reads past the end
// return zeros.
type fuzzInput struct{ b []byte }

func (in *fuzzInput) more() bool { return len(in.b) > 0 }

func (in *fuzzInput) u8() uint8 {
	if len(in.b) == 0 {
		return 0
	}
	v := in.b[0]
	in.b = in.b[1:]
	return v
}

func (in *fuzzInput) u32() uint32 {
	var w [4]byte
	n := copy(w[:], in.b)
	in.b = in.b[n:]
	return binary.LittleEndian.Uint32(w[:])
}

func (in *fuzzInput) u64() uint64 { return uint64(in.u32()) | uint64(in.u32())<<32 }

// Fuzz operations.
const (
	fzWrite = iota
	fzRead
	fzOddAccess
	fzBaseMSR
	fzTSCDeadline
	fzDeliver
	fzTake
	fzAck
	fzAdvance
	fzPollDeadline
	fzReset
	fzSaveRestore
	fzICR
	fzNumOps
)

// fuzzOps encodes operations for the seed corpus.
type fuzzOps []byte

func (o fuzzOps) op(code, target uint8, args ...any) fuzzOps {
	o = append(o, code, target)
	for _, a := range args {
		switch v := a.(type) {
		case uint8:
			o = append(o, v)
		case int:
			o = binary.LittleEndian.AppendUint32(o, uint32(v))
		case uint32:
			o = binary.LittleEndian.AppendUint32(o, v)
		case uint64:
			o = binary.LittleEndian.AppendUint64(o, v)
		}
	}
	return o
}

// regIndex is the fuzzer's register selector for offset off.
func regIndex(off uint32) uint8 {
	for i, o := range allRegisters() {
		if o == off {
			return uint8(i)
		}
	}
	panic("not a register")
}

// FuzzLAPIC runs two LAPICs on one Group through random register writes
// and reads, MSR writes, deliveries, acknowledgements, EOIs, IPIs, resets,
// clock advances, polls and save/restore round trips, and checks after
// every operation: nothing panics; Pending is -1 or a legal vector in IRR
// above PPR; IRR, ISR and TMR hold no vector below 16 and ISR at most one
// per class (Save's state passes Restore's checks); a Poll leaves nothing
// due; a refused MSR write changes nothing; the callbacks stay bounded.
func FuzzLAPIC(f *testing.F) {
	linux := fuzzOps{}.
		op(fzWrite, 0, regIndex(RegSVR), 0x1FF).
		op(fzWrite, 0, regIndex(RegLVTLINT0), 0x700).
		op(fzWrite, 0, regIndex(RegLVTError), 0xFE).
		op(fzWrite, 0, regIndex(RegTimerDivide), 0xB).
		op(fzWrite, 0, regIndex(RegLVTTimer), TimerPeriodic<<17|0xEC).
		op(fzWrite, 0, regIndex(RegTimerInitial), 1).
		op(fzAdvance, 0, 5000000).
		op(fzPollDeadline, 0).
		op(fzTake, 0, uint8(1)).
		op(fzWrite, 1, regIndex(RegSVR), 0x1FF).
		op(fzICR, 0, 0xC00FD, 0).
		op(fzTake, 1, uint8(1)).
		op(fzICR, 1, 0xC500, 0).
		op(fzICR, 1, 0x069A, 0).
		op(fzDeliver, 0, uint8(5), uint8(1)).
		op(fzDeliver, 0, uint8(0x61), uint8(1)).
		op(fzTake, 0, uint8(0)).
		op(fzSaveRestore, 0).
		op(fzWrite, 0, regIndex(RegLVTTimer), TimerTSCDeadline<<17|0xEC).
		op(fzTSCDeadline, 0, uint64(1<<20)).
		op(fzPollDeadline, 0).
		op(fzBaseMSR, 0, uint64(0xFEE00100)).
		op(fzBaseMSR, 0, uint64(0xFEE00D00)).
		op(fzSaveRestore, 0)
	f.Add([]byte(linux))
	f.Add([]byte{})
	f.Add([]byte{fzWrite, 0, 200, 0xFF, 0xFF, 0xFF, 0xFF, fzAdvance, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(fuzzLAPIC)
}

// fuzzLAPIC is FuzzLAPIC's body: one run of the operations data encodes.
func fuzzLAPIC(t *testing.T, data []byte) {
	clk := &fakeClock{}
	var interrupts, signals int
	g := NewGroup(func(uint32, IPI) { signals++ })
	var ls [2]*LAPIC
	cfg := func(id uint32) Config {
		return Config{ID: id, BSP: id == 0, Clock: clk, Bus: g, OnInterrupt: func() { interrupts++ }}
	}
	for id := range ls {
		l, err := New(cfg(uint32(id)))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(l); err != nil {
			t.Fatal(err)
		}
		ls[id] = l
	}
	regs := allRegisters()
	in := &fuzzInput{data}
	for n := 0; in.more() && n < 4000; n++ {
		op, target := in.u8()%fzNumOps, in.u8()
		l := ls[target&1]
		polled := false
		switch op {
		case fzWrite:
			i := in.u8()
			off := uint64(i) * 16 // an offset anywhere in the page
			if int(i) < len(regs) {
				off = uint64(regs[i])
			}
			l.Write(off, 4, in.u32())
		case fzRead:
			l.Read(uint64(in.u8())*16, 4)
		case fzOddAccess:
			off, size := uint64(in.u32()), int(int8(in.u8()))
			l.Read(off, size)
			l.Write(off, size, in.u32())
		case fzBaseMSR:
			v := in.u64()
			if target&2 != 0 {
				v = Base | v&0xFFF // mostly legal ones
			}
			before := l.Save()
			if err := l.WriteBaseMSR(v); err != nil {
				if !errors.Is(err, ErrBaseMSR) {
					t.Fatalf("WriteBaseMSR(%#x) = %v", v, err)
				}
				if diff := cmp.Diff(before, l.Save()); diff != "" {
					t.Fatalf("refused WriteBaseMSR(%#x) changed the state:\n%s", v, diff)
				}
			}
		case fzTSCDeadline:
			v := in.u64()
			if target&2 != 0 {
				v = uint64(clk.Now()) + v%(1<<24)
			}
			l.WriteTSCDeadline(v)
			_ = l.ReadTSCDeadline()
		case fzDeliver:
			l.Deliver(in.u8(), in.u8()&1 != 0)
		case fzTake:
			eoi := in.u8()&1 != 0
			if v := l.Pending(); v >= 0 && !l.Ack(uint8(v)) {
				t.Fatalf("Ack(%#x) of the pending vector failed", v)
			}
			if eoi {
				l.Write(RegEOI, 4, 0)
			}
		case fzAck:
			l.Ack(in.u8())
		case fzAdvance:
			d := time.Duration(in.u32()) << (target >> 4)
			clk.set(min(clk.Now()+d, vclock.MaxTime))
			l.Poll(clk.Now())
			polled = true
		case fzPollDeadline:
			if dl, ok := l.NextDeadline(); ok && dl <= vclock.MaxTime {
				clk.set(dl)
				l.Poll(clk.Now())
				polled = true
			}
		case fzReset:
			if target&2 != 0 {
				l.Reset()
			} else {
				l.InitReset()
			}
		case fzSaveRestore:
			st := l.Save()
			fresh, err := New(cfg(l.ID()))
			if err != nil {
				t.Fatal(err)
			}
			if err := fresh.Restore(st); err != nil {
				t.Fatalf("Restore of a saved state: %v", err)
			}
			if diff := cmp.Diff(st, fresh.Save()); diff != "" {
				t.Fatalf("round trip differs:\n%s", diff)
			}
			if err := l.Restore(st); err != nil {
				t.Fatal(err)
			}
		case fzICR:
			l.Write(RegICRHigh, 4, in.u32())
			l.Write(RegICRLow, 4, in.u32())
		}
		for _, other := range ls {
			checkInvariants(t, other, clk.Now(), polled && other == l)
		}
		if interrupts > 16*(n+1) || signals > 4*(n+1) {
			t.Fatalf("%d interrupts and %d signals after %d operations", interrupts, signals, n+1)
		}
	}
}

// checkInvariants checks one LAPIC after an operation at time now; polled
// says the operation polled it at now.
func checkInvariants(t *testing.T, l *LAPIC, now time.Duration, polled bool) {
	t.Helper()
	v := l.Pending()
	st := l.Save()
	var irr bitmap = st.IRR
	switch {
	case v < -1 || v > 255:
		t.Fatalf("Pending = %d", v)
	case v >= 0 && v < 16:
		t.Fatalf("Pending = %d, an illegal vector", v)
	case v >= 0 && !irr.has(uint8(v)):
		t.Fatalf("Pending = %#x, not in IRR %x", v, st.IRR)
	case v >= 0 && uint32(v)>>4 <= l.Read(RegPPR, 4)>>4:
		t.Fatalf("Pending = %#x, not above PPR %#x", v, l.Read(RegPPR, 4))
	case st.IRR[0]&0xFFFF != 0:
		t.Fatalf("illegal vector in IRR %x", st.IRR)
	}
	if _, err := l.check(&st, time.Duration(st.Clock)); err != nil {
		t.Fatalf("saved state fails Restore's checks: %v\n%+v", err, st)
	}
	if polled {
		if dl, ok := l.NextDeadline(); ok && dl <= now {
			t.Fatalf("a deadline at %v is still due after Poll(%v)", dl, now)
		}
	}
}
