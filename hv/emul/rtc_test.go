package emul

import (
	"sync"
	"testing"
	"time"
)

// fakeWall is a settable wall clock.
type fakeWall struct {
	mu sync.Mutex
	t  time.Time
}

func (w *fakeWall) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.t
}

func (w *fakeWall) add(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = w.t.Add(d)
}

func cmosRead(r *RTC, i uint8) uint8 {
	outb(r, RTCIndex, i)
	return inb(r, RTCData)
}

func cmosWrite(r *RTC, i, v uint8) {
	outb(r, RTCIndex, i)
	outb(r, RTCData, v)
}

func TestRTCTimeRegisters(t *testing.T) {
	// A Thursday afternoon in a leap year, given in a non-UTC zone: the
	// RTC shows UTC.
	zone := time.FixedZone("X", 3*3600)
	base := time.Date(2024, 2, 29, 16, 45, 7, 0, zone) // 13:45:07 UTC
	tests := []struct {
		name  string
		regB  uint8
		when  time.Time
		index uint8
		want  uint8
	}{
		{"BCD seconds", 0x02, base, rtcSeconds, 0x07},
		{"BCD minutes", 0x02, base, rtcMinutes, 0x45},
		{"BCD hours 24h", 0x02, base, rtcHours, 0x13},
		{"BCD weekday (Sunday=1)", 0x02, base, rtcDayOfWeek, 0x05},
		{"BCD day", 0x02, base, rtcDayOfMonth, 0x29},
		{"BCD month", 0x02, base, rtcMonth, 0x02},
		{"BCD year", 0x02, base, rtcYear, 0x24},
		{"BCD century", 0x02, base, rtcCentury, 0x20},
		{"binary seconds", 0x06, base, rtcSeconds, 7},
		{"binary hours", 0x06, base, rtcHours, 13},
		{"binary year", 0x06, base, rtcYear, 24},
		{"binary century", 0x06, base, rtcCentury, 20},
		{"12h BCD afternoon", 0x00, base, rtcHours, 0x81},
		{"12h binary afternoon", 0x04, base, rtcHours, 0x81},
		{"12h midnight", 0x00, time.Date(2024, 1, 1, 0, 5, 0, 0, time.UTC), rtcHours, 0x12},
		{"12h noon", 0x00, time.Date(2024, 1, 1, 12, 5, 0, 0, time.UTC), rtcHours, 0x92},
		{"12h 11pm", 0x00, time.Date(2024, 1, 1, 23, 5, 0, 0, time.UTC), rtcHours, 0x91},
		{"Sunday", 0x02, time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC), rtcDayOfWeek, 0x01},
		{"Saturday", 0x02, time.Date(2023, 12, 30, 0, 0, 0, 0, time.UTC), rtcDayOfWeek, 0x07},
		{"1999", 0x02, time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), rtcCentury, 0x19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &fakeWall{t: tt.when}
			r := NewRTC(w.now)
			cmosWrite(r, rtcRegB, tt.regB)
			if got := cmosRead(r, tt.index); got != tt.want {
				t.Errorf("register %#x = %#x, want %#x", tt.index, got, tt.want)
			}
		})
	}
}

func TestRTCStatusRegisters(t *testing.T) {
	w := &fakeWall{t: time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)}
	r := NewRTC(w.now)
	tests := []struct {
		name  string
		index uint8
		want  uint8
	}{
		{"A: divider and rate", rtcRegA, 0x26},
		{"B: 24h BCD", rtcRegB, 0x02},
		{"C: no flags", rtcRegC, 0x00},
		{"D: valid RAM and time", rtcRegD, 0x80},
	}
	for _, tt := range tests {
		if got := cmosRead(r, tt.index); got != tt.want {
			t.Errorf("%s: %#x, want %#x", tt.name, got, tt.want)
		}
	}
	cmosWrite(r, rtcRegD, 0)
	cmosWrite(r, rtcRegC, 0xFF)
	cmosWrite(r, rtcRegA, 0xFF) // UIP is read-only
	if d, c, a := cmosRead(r, rtcRegD), cmosRead(r, rtcRegC), cmosRead(r, rtcRegA); d != 0x80 || c != 0 || a != 0x7F {
		t.Errorf("after writes: D %#x C %#x A %#x", d, c, a)
	}
	if got := inb(r, RTCIndex); got != 0xFF {
		t.Errorf("index port read = %#x", got)
	}
}

func TestRTCUIP(t *testing.T) {
	tests := []struct {
		frac time.Duration
		uip  bool
	}{
		{0, false},
		{500 * time.Millisecond, false},
		{time.Second - 245*time.Microsecond, false},
		{time.Second - 244*time.Microsecond, true},
		{time.Second - time.Nanosecond, true},
	}
	for _, tt := range tests {
		w := &fakeWall{t: time.Date(2025, 1, 1, 0, 0, 10, 0, time.UTC).Add(tt.frac)}
		r := NewRTC(w.now)
		if got := cmosRead(r, rtcRegA)&regAUIP != 0; got != tt.uip {
			t.Errorf("%v into the second: UIP %v, want %v", tt.frac, got, tt.uip)
		}
	}
}

// TestRTCLinuxRead runs mc146818_avoid_UIP's pattern (read seconds, check
// UIP, reread seconds, read the rest, check UIP and seconds again) while
// the wall clock moves 40 µs per access, starting just before an update.
func TestRTCLinuxRead(t *testing.T) {
	w := &fakeWall{t: time.Date(2025, 3, 9, 23, 59, 59, 0, time.UTC).Add(time.Second - 300*time.Microsecond)}
	r := NewRTC(w.now)
	read := func(i uint8) uint8 {
		w.add(40 * time.Microsecond)
		return cmosRead(r, i)
	}
	sawUIP := false
	for tries := 0; tries < 100; tries++ {
		sec := read(rtcSeconds)
		if read(rtcRegA)&regAUIP != 0 {
			sawUIP = true
			w.add(100 * time.Microsecond) // udelay(UIP_RECHECK_DELAY)
			continue
		}
		if sec != read(rtcSeconds) {
			continue
		}
		min, hour := read(rtcMinutes), read(rtcHours)
		day, mon, year := read(rtcDayOfMonth), read(rtcMonth), read(rtcYear)
		if read(rtcRegA)&regAUIP != 0 || sec != read(rtcSeconds) {
			continue
		}
		if !sawUIP {
			t.Error("UIP never seen although the read began just before an update")
		}
		if sec != 0x00 || min != 0x00 || hour != 0x00 || day != 0x10 || mon != 0x03 || year != 0x25 {
			t.Errorf("read %02x:%02x:%02x %02x/%02x/%02x, want 00:00:00 10/03/25", hour, min, sec, day, mon, year)
		}
		return
	}
	t.Fatal("UIP never fell")
}

func TestRTCSetTime(t *testing.T) {
	w := &fakeWall{t: time.Date(2025, 1, 1, 12, 0, 0, 250*int(time.Millisecond), time.UTC)}
	r := NewRTC(w.now)
	// mc146818_set_time: SET on, divider reset, registers, SET off.
	b := cmosRead(r, rtcRegB)
	a := cmosRead(r, rtcRegA)
	cmosWrite(r, rtcRegB, b|regBSET|regBUIE)
	if got := cmosRead(r, rtcRegB); got != b|regBSET {
		t.Errorf("B with SET = %#x: UIE should be cleared", got)
	}
	cmosWrite(r, rtcRegA, a|0x70)
	w.add(3 * time.Second)
	if got := cmosRead(r, rtcSeconds); got != 0x00 {
		t.Errorf("seconds moved while SET: %#x", got)
	}
	if cmosRead(r, rtcRegA)&regAUIP != 0 {
		t.Error("UIP while SET")
	}
	for _, kv := range [][2]uint8{
		{rtcSeconds, 0x30}, {rtcMinutes, 0x15}, {rtcHours, 0x08},
		{rtcDayOfMonth, 0x04}, {rtcMonth, 0x07}, {rtcYear, 0x26}, {rtcCentury, 0x20},
	} {
		cmosWrite(r, kv[0], kv[1])
	}
	if got := cmosRead(r, rtcMinutes); got != 0x15 {
		t.Errorf("frozen minutes = %#x", got)
	}
	cmosWrite(r, rtcRegB, b)
	cmosWrite(r, rtcRegA, a)
	if got := cmosRead(r, rtcSeconds); got != 0x30 {
		t.Errorf("seconds after SET off = %#x", got)
	}
	w.add(2 * time.Second)
	got := []uint8{cmosRead(r, rtcHours), cmosRead(r, rtcMinutes), cmosRead(r, rtcSeconds), cmosRead(r, rtcDayOfMonth), cmosRead(r, rtcMonth), cmosRead(r, rtcYear)}
	want := []uint8{0x08, 0x15, 0x32, 0x04, 0x07, 0x26}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("clock after 2s = % x, want % x", got, want)
		}
	}
	// Writes while the clock runs are lost.
	cmosWrite(r, rtcMinutes, 0x59)
	if got := cmosRead(r, rtcMinutes); got != 0x15 {
		t.Errorf("running clock took a write: %#x", got)
	}
}

func TestRTCSetTime12h(t *testing.T) {
	w := &fakeWall{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := NewRTC(w.now)
	cmosWrite(r, rtcRegB, regBSET|regBDM) // binary, 12h
	cmosWrite(r, rtcHours, 0x80|11)       // 11 pm
	cmosWrite(r, rtcRegB, regBDM|regB24)  // release, and read 24h
	if got := cmosRead(r, rtcHours); got != 23 {
		t.Errorf("hours = %d, want 23", got)
	}
}

func TestRTCRAMAndIndex(t *testing.T) {
	r := NewRTC(func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) })
	for i := uint8(rtcFirst); i < rtcRegs; i++ {
		if i == rtcCentury {
			continue
		}
		cmosWrite(r, i, i^0xA5)
	}
	for i := uint8(rtcFirst); i < rtcRegs; i++ {
		if i == rtcCentury {
			continue
		}
		if got := cmosRead(r, i); got != i^0xA5 {
			t.Fatalf("RAM %#x = %#x", i, got)
		}
	}
	// Bit 7 of the index masks NMI and does not select a register.
	outb(r, RTCIndex, 0x80|0x20)
	if !r.NMIMasked() {
		t.Error("NMI not masked")
	}
	if got := inb(r, RTCData); got != 0x20^0xA5 {
		t.Errorf("register 0x20 through the NMI-masked index = %#x", got)
	}
	outb(r, RTCIndex, 0x20)
	if r.NMIMasked() {
		t.Error("NMI still masked")
	}
	// Alarm registers are storage.
	cmosWrite(r, rtcSecondsAlarm, 0x42)
	if got := cmosRead(r, rtcSecondsAlarm); got != 0x42 {
		t.Errorf("alarm = %#x", got)
	}
	// SetCMOS fills RAM but not the clock.
	r.SetCMOS(0x34, 0x77)
	r.SetCMOS(rtcCentury, 0x99)
	r.SetCMOS(rtcSeconds, 0x99)
	if cmosRead(r, 0x34) != 0x77 || cmosRead(r, rtcCentury) != 0x20 || cmosRead(r, rtcSeconds) != 0 {
		t.Error("SetCMOS")
	}
	// A word write to 0x70 sets the index and writes the data port.
	r.Out(RTCIndex, 2, 0x5A<<8|0x40)
	if got := cmosRead(r, 0x40); got != 0x5A {
		t.Errorf("word write = %#x", got)
	}
}
