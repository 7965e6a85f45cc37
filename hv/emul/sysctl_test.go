package emul

import "testing"

func TestSysCtlPortB(t *testing.T) {
	clk := &FakeClock{}
	pit := NewPIT(clk, nil)
	s := NewSysCtl(pit)
	tests := []struct {
		name  string
		write uint8
		want  uint8 // bits 0-3; bits 4 and 5 are checked separately
	}{
		{"power-on", 0xFF, 0x0F}, // first row writes all ones
		{"gate only", 0x01, 0x01},
		{"speaker only", 0x02, 0x02},
		{"status bits not writable", 0xF0, 0x00},
		{"NMI disables", 0x0C, 0x0C},
	}
	for _, tt := range tests {
		outb(s, SysCtlPortB, tt.write)
		if got := inb(s, SysCtlPortB) &^ (portBRefresh | portBOut2); got != tt.want {
			t.Errorf("%s: %#x, want %#x", tt.name, got, tt.want)
		}
	}
	// Bit 4 toggles on every read.
	a := inb(s, SysCtlPortB) & portBRefresh
	b := inb(s, SysCtlPortB) & portBRefresh
	c := inb(s, SysCtlPortB) & portBRefresh
	if a == b || b == c {
		t.Errorf("refresh bit does not toggle: %#x %#x %#x", a, b, c)
	}
	// Bit 5 is counter 2's output: mode 0, 100 ticks.
	outb(s, SysCtlPortB, 0x01)
	outb(pit, PITControl, 0xB0)
	outb(pit, PITCounter2, 100)
	outb(pit, PITCounter2, 0)
	clk.Set(pitTime(99))
	if inb(s, SysCtlPortB)&portBOut2 != 0 {
		t.Error("bit 5 set before terminal count")
	}
	clk.Set(pitTime(100))
	if inb(s, SysCtlPortB)&portBOut2 == 0 {
		t.Error("bit 5 clear at terminal count")
	}
	// Clearing bit 0 gates counter 2 off: a new count does not run.
	outb(s, SysCtlPortB, 0x00)
	outb(pit, PITCounter2, 100)
	outb(pit, PITCounter2, 0)
	clk.Set(pitTime(1000))
	if inb(s, SysCtlPortB)&portBOut2 != 0 {
		t.Error("counter 2 ran with its gate off")
	}
}

func TestSysCtlPOSTAndPortA(t *testing.T) {
	s := NewSysCtl(nil)
	for _, v := range []uint8{0x00, 0x55, 0xFF} {
		outb(s, POSTPort, v) // Linux's io_delay
		if s.POST() != v {
			t.Errorf("POST = %#x, want %#x", s.POST(), v)
		}
		if got := inb(s, POSTPort); got != 0xFF {
			t.Errorf("port 0x80 read = %#x", got)
		}
	}
	if got := inb(s, SysCtlPortA); got != portAA20 {
		t.Errorf("port A at power-on = %#x, want A20 on", got)
	}
	resets := 0
	s.OnReset = func() { resets++ }
	outb(s, SysCtlPortA, portAA20)
	outb(s, SysCtlPortA, portAA20|portAReset)
	outb(s, SysCtlPortA, portAA20|portAReset) // no new transition
	if resets != 1 {
		t.Errorf("%d resets, want 1", resets)
	}
	if got := inb(s, SysCtlPortA); got != portAA20|portAReset {
		t.Errorf("port A = %#x", got)
	}
	if got := inb(s, SysCtlPortB); got&portBOut2 != 0 {
		t.Errorf("bit 5 without a PIT = %#x", got)
	}
}
