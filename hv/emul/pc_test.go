package emul

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestNewPCRegistersDevices(t *testing.T) {
	var bus Bus
	pc := NewPC(&bus, &FakeClock{}, nil, nil)
	want := []string{
		"pic1   0x0020-0x0021",
		"pit    0x0040-0x0043 irq 0",
		"kbd    0x0060-0x0060",
		"port61 0x0061-0x0061",
		"kbdctl 0x0064-0x0064",
		"rtc    0x0070-0x0071",
		"post   0x0080-0x0080",
		"port92 0x0092-0x0092",
		"pic2   0x00a0-0x00a1",
		"com1   0x03f8-0x03ff irq 4",
		"elcr   0x04d0-0x04d1",
	}
	devs := pc.Devices()
	if len(devs) != len(want) {
		t.Fatalf("%d devices, want %d", len(devs), len(want))
	}
	for i, d := range devs {
		if d.String() != want[i] {
			t.Errorf("device %d = %q, want %q", i, d.String(), want[i])
		}
	}
	if got := len(bus.Devices()); got != len(want) {
		t.Errorf("bus lists %d ranges", got)
	}
	// Devices returns a copy.
	devs[0].Name = "x"
	if pc.Devices()[0].Name != "pic1" {
		t.Error("Devices exposes its slice")
	}
}

func TestNewPCOverlapPanics(t *testing.T) {
	var bus Bus
	if err := bus.Register("dbg", 0x80, 0x80, &regDev{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "overlaps") {
			t.Errorf("recovered %v, want an overlap error", r)
		}
	}()
	NewPC(&bus, &FakeClock{}, nil, nil)
}

// TestPCLinuxBoot drives the whole set through the bus in the order a
// Linux 6.12 kernel without APIC reaches it: PIC set-up, TSC calibration
// on counter 2, the periodic tick on counter 0, the RTC read and a line on
// the serial console, with the VM's side (OnChange, NextDeadline, Advance,
// Ack) played by the test.
func TestPCLinuxBoot(t *testing.T) {
	var bus Bus
	clk := &FakeClock{}
	var console bytes.Buffer
	wall := func() time.Time { return time.Date(2025, 5, 17, 8, 30, 0, 0, time.UTC) }
	pc := NewPC(&bus, clk, &console, wall)
	wakeups := 0
	pc.PIC.OnChange = func() { wakeups++ }
	rearms := 0
	pc.PIT.OnReprogram = func() { rearms++ }

	linuxInitPIC(t, pc.PIC, 0x01)
	if wakeups != 0 || pc.PIC.Pending() {
		t.Fatal("interrupt after PIC set-up")
	}

	// quick_pit_calibrate's start on counter 2.
	bus.Out(SysCtlPortB, 1, bus.In(SysCtlPortB, 1)&^2|1)
	bus.Out(PITControl, 1, 0xB0)
	bus.Out(PITCounter2, 1, 0xFF)
	bus.Out(PITCounter2, 1, 0xFF)
	clk.Add(55 * time.Millisecond)
	if bus.In(SysCtlPortB, 1)&0x20 == 0 {
		t.Error("counter 2 not at terminal count after 55ms")
	}

	// The clockevent's periodic mode at HZ=250, IRQ 0 unmasked.
	bus.Out(PITControl, 1, 0x34)
	bus.Out(PITCounter0, 1, 4773&0xFF)
	bus.Out(PITCounter0, 1, 4773>>8)
	if rearms == 0 {
		t.Error("no OnReprogram for counter 0")
	}
	bus.Out(PICMasterData, 1, bus.In(PICMasterData, 1)&^1)
	ticks := 0
	for i := 0; i < 25; i++ {
		d, ok := pc.PIT.NextDeadline()
		if !ok {
			t.Fatal("no deadline")
		}
		clk.Set(d)
		pc.PIT.Advance(clk.Now())
		for pc.PIC.Pending() {
			v, _ := pc.PIC.Ack()
			if v == 0x30 {
				ticks++
			}
			bus.Out(PICMasterCmd, 1, 0x60)
		}
	}
	if ticks != 25 || wakeups < 25 {
		t.Errorf("%d ticks, %d wake-ups, want 25 each", ticks, wakeups)
	}

	// The RTC.
	bus.Out(RTCIndex, 1, rtcHours)
	if h := bus.In(RTCData, 1); h != 0x08 {
		t.Errorf("RTC hours = %#x", h)
	}

	// The console, and input with an interrupt.
	bus.Out(COM1Base+uartLCR, 1, 0x03)
	bus.Out(COM1Base+uartFCR, 1, 0x81)
	bus.Out(COM1Base+uartMCR, 1, mcrOUT2|mcrDTR|mcrRTS)
	bus.Out(COM1Base+uartIER, 1, ierRDA)
	bus.Out(PICMasterData, 1, bus.In(PICMasterData, 1)&^(1<<4))
	for _, c := range []byte("GUEST-OK\n") {
		bus.Out(COM1Base, 1, uint32(c))
	}
	if console.String() != "GUEST-OK\n" {
		t.Errorf("console %q", console.String())
	}
	pc.UART.Feed([]byte("ls\n"))
	if !pc.PIC.Pending() {
		t.Fatal("no interrupt for input")
	}
	if v, ok := pc.PIC.Ack(); v != 0x34 || !ok {
		t.Errorf("Ack = %#x %v, want 0x34", v, ok)
	}
}
