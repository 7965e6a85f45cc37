package emul

import (
	"testing"
	"time"
)

func TestACPIPM(t *testing.T) {
	off := 0
	p := &ACPIPM{OnPowerOff: func() { off++ }}
	if v := p.In(ACPIPM1aCnt, 2); v != pm1CntSCIEn {
		t.Errorf("PM1_CNT after power-up: %#x, want SCI_EN alone", v)
	}
	p.Out(ACPIPM1aEvt+2, 2, 0xffff)
	if v := p.In(ACPIPM1aEvt+2, 2); v != pm1EnWritable {
		t.Errorf("PM1_EN after writing all ones: %#x, want %#x", v, pm1EnWritable)
	}
	p.Out(ACPIPM1aEvt, 2, 0xffff) // write-one-to-clear: nothing is set
	if v := p.In(ACPIPM1aEvt, 4); v != pm1EnWritable<<16 {
		t.Errorf("PM1_STS/PM1_EN: %#x", v)
	}
	// A sleep state the tables do not name does nothing; SLP_EN is
	// write-only.
	p.Out(ACPIPM1aCnt, 2, pm1CntSlpEn|1<<10)
	if off != 0 {
		t.Fatal("SLP_TYP 1 powered off")
	}
	if v := p.In(ACPIPM1aCnt, 2); v != 1<<10|pm1CntSCIEn {
		t.Errorf("PM1_CNT: %#x", v)
	}
	// SLP_TYP without SLP_EN is only kept.
	p.Out(ACPIPM1aCnt, 2, SlpTypS5<<10)
	if off != 0 {
		t.Fatal("SLP_TYP alone powered off")
	}
	// Byte writes, low byte first: the high byte's SLP_EN acts.
	p.Out(ACPIPM1aCnt, 1, 0)
	p.Out(ACPIPM1aCnt+1, 1, (pm1CntSlpEn|SlpTypS5<<10)>>8)
	if off != 1 {
		t.Fatalf("S5 by byte writes: %d power-offs, want 1", off)
	}
	p.Out(ACPIPM1aCnt, 2, pm1CntSlpEn|SlpTypS5<<10)
	if off != 2 {
		t.Fatalf("S5 by a word write: %d power-offs, want 2", off)
	}
	// Without a handler a power-off request is dropped, not a panic.
	q := &ACPIPM{}
	q.Out(ACPIPM1aCnt, 2, pm1CntSlpEn|SlpTypS5<<10)
}

func TestACPIPMTimer(t *testing.T) {
	clk := &FakeClock{}
	p := &ACPIPM{Clock: clk}
	if v := p.In(ACPIPMTmr, 4); v != 0 {
		t.Errorf("PM_TMR at 0: %#x", v)
	}
	clk.Set(time.Second)
	if v := p.In(ACPIPMTmr, 4); v != ACPIPMTimerHz {
		t.Errorf("PM_TMR after 1 s: %d, want %d", v, ACPIPMTimerHz)
	}
	// Byte and word reads see the same count.
	clk.Set(1234567 * time.Microsecond)
	want := uint32(1234567 * ACPIPMTimerHz / 1000000)
	if v := p.In(ACPIPMTmr, 4); v != want {
		t.Errorf("PM_TMR after 1.234567 s: %d, want %d", v, want)
	}
	if v := p.In(ACPIPMTmr, 2) | p.In(ACPIPMTmr+2, 2)<<16; v != want {
		t.Errorf("PM_TMR by words: %#x, want %#x", v, want)
	}
	if v := p.In(ACPIPMTmr+3, 1); v != want>>24 {
		t.Errorf("PM_TMR high byte: %#x, want %#x", v, want>>24)
	}
	// Bytes past the register read 0, not a wrapped-around low byte.
	if v := p.In(ACPIPMTmr+2, 4); v != want>>16 {
		t.Errorf("4-byte read at PM_TMR+2: %#x, want %#x", v, want>>16)
	}
	// 32 bits wide: it wraps after 2^32 ticks (about 20 minutes), and
	// no time is large enough to overflow the computation.
	wrap := time.Duration(1<<32) * time.Second / ACPIPMTimerHz
	clk.Set(wrap + time.Second)
	if v := p.In(ACPIPMTmr, 4); v < ACPIPMTimerHz-1 || v > ACPIPMTimerHz+1 {
		t.Errorf("PM_TMR one second past its wrap: %d, want about %d", v, ACPIPMTimerHz)
	}
	// Writes are ignored.
	before := p.In(ACPIPMTmr, 4)
	p.Out(ACPIPMTmr, 4, 0)
	if v := p.In(ACPIPMTmr, 4); v != before {
		t.Errorf("PM_TMR after a write: %d, want %d", v, before)
	}
	clk.Set(1<<63 - 1)
	_ = p.In(ACPIPMTmr, 4)
	// Without a clock it reads 0.
	if v := (&ACPIPM{}).In(ACPIPMTmr, 4); v != 0 {
		t.Errorf("PM_TMR without a clock: %#x", v)
	}
}
