package lapic

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentDelivery: other vCPUs send IPIs to vCPU 0 through the
// Group, each waiting for its previous one to be handled, while a device
// goroutine delivers a vector freely and a timer goroutine polls; vCPU 0
// takes and ends them all. Every IPI is handled exactly once, the free
// vector at least once and never more often than it was sent, and nothing
// is left in IRR or ISR. Run it under -race.
func TestConcurrentDelivery(t *testing.T) {
	const (
		senders = 4
		rounds  = 2000
		free    = 0xE0
	)
	clk := &fakeClock{}
	g := NewGroup(nil)
	wake := make(chan struct{}, 1)
	var lapics [senders + 1]*LAPIC
	for id := range lapics {
		cfg := Config{ID: uint32(id), BSP: id == 0, Clock: clk, Bus: g}
		if id == 0 {
			cfg.OnInterrupt = func() {
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
		l, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(l); err != nil {
			t.Fatal(err)
		}
		l.Write(RegSVR, 4, SVREnable|0xFF)
		lapics[id] = l
	}
	owner := lapics[0]
	owner.Write(RegLVTTimer, 4, TimerPeriodic<<17|timerVector)
	owner.Write(RegTimerDivide, 4, 0xB)
	owner.Write(RegTimerInitial, 4, 1) // MinPeriod

	// Sender s sends vector 0x30 + 0x20·s (classes 3, 5, 7, 9) and waits
	// on acks[s] before its next.
	vector := func(s int) uint8 { return uint8(0x30 + 0x20*s) }
	var acks [senders]chan struct{}
	for s := range acks {
		acks[s] = make(chan struct{}, 1)
	}
	var sentFree atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := lapics[s+1]
			lo, hi := IPI{Vector: vector(s), Assert: true, Dest: 0}.ICR()
			for range rounds {
				l.Write(RegICRHigh, 4, hi)
				l.Write(RegICRLow, 4, lo)
				<-acks[s]
			}
		}()
	}
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { // a device
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			owner.Deliver(free, false)
			sentFree.Add(1)
			time.Sleep(10 * time.Microsecond)
		}
	}()
	go func() { // the VM's timer
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			clk.add(time.Microsecond * 37)
			owner.Poll(clk.Now())
			_, _ = owner.NextDeadline()
			time.Sleep(20 * time.Microsecond)
		}
	}()

	var handled [256]int
	total := 0
	deadline := time.Now().Add(time.Minute)
	for total < senders*rounds {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d IPIs handled in a minute", total, senders*rounds)
		}
		v := owner.Pending()
		if v < 0 {
			select {
			case <-wake:
			case <-time.After(time.Millisecond):
			}
			continue
		}
		if !owner.Ack(uint8(v)) {
			t.Fatalf("Ack(%#x) of a vector Pending returned failed with no INIT about", v)
		}
		handled[v]++
		owner.Write(RegEOI, 4, 0)
		for s := range senders {
			if uint8(v) == vector(s) {
				total++
				acks[s] <- struct{}{}
			}
		}
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	// Drain what the device and the timer left.
	owner.Write(RegTimerInitial, 4, 0)
	for v := owner.Pending(); v >= 0; v = owner.Pending() {
		owner.Ack(uint8(v))
		handled[v]++
		owner.Write(RegEOI, 4, 0)
	}
	for s := range senders {
		if got := handled[vector(s)]; got != rounds {
			t.Errorf("sender %d's vector %#x handled %d times, want %d", s, vector(s), got, rounds)
		}
	}
	if got, sent := int64(handled[free]), sentFree.Load(); got < 1 || got > sent {
		t.Errorf("device vector handled %d times for %d sent", got, sent)
	}
	st := owner.Save()
	if st.IRR != [8]uint32{} || st.ISR != [8]uint32{} {
		t.Errorf("left in IRR %x, ISR %x", st.IRR, st.ISR)
	}
}

// TestConcurrentInit: INITs from another vCPU reset a LAPIC whose owner is
// taking interrupts; Ack fails cleanly when an INIT took the vector away,
// and the owner never sees a vector it did not get. Run it under -race.
func TestConcurrentInit(t *testing.T) {
	clk := &fakeClock{}
	g := NewGroup(func(uint32, IPI) {})
	var ls [2]*LAPIC
	for id := range ls {
		l, err := New(Config{ID: uint32(id), Clock: clk, Bus: g})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(l); err != nil {
			t.Fatal(err)
		}
		ls[id] = l
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		lo, hi := IPI{Mode: INIT, Assert: true, Dest: 0}.ICR()
		flo, _ := IPI{Vector: 0x55, Assert: true, Dest: 0}.ICR()
		for range 2000 {
			ls[1].Write(RegICRHigh, 4, hi)
			ls[1].Write(RegICRLow, 4, flo)
			ls[1].Write(RegICRLow, 4, lo)
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		ls[0].Write(RegSVR, 4, SVREnable|0xFF)
		if v := ls[0].Pending(); v >= 0 {
			if v != 0x55 {
				t.Fatalf("Pending = %#x, want 0x55 or nothing", v)
			}
			ls[0].Ack(uint8(v))
			ls[0].Write(RegEOI, 4, 0)
		}
	}
}
