package emul

import (
	"sync"
	"time"
)

// The 8254 programmable interval timer of a PC: three counters clocked at
// PITFrequency. Counter 0's output drives IRQ 0; counter 1 once refreshed
// DRAM and is unconnected; counter 2's gate is bit 0 of port 0x61 and its
// output is readable in bit 5 of the same port (see SysCtl).
const (
	PITCounter0 = 0x40
	PITCounter1 = 0x41
	PITCounter2 = 0x42
	PITControl  = 0x43

	// PITFrequency is the counters' input clock in Hz: the 14.31818 MHz
	// NTSC colour-burst crystal divided by 12, rounded as Linux rounds it
	// (PIT_TICK_RATE).
	PITFrequency = 1193182
)

// Control-word fields (8254 datasheet, "Control Word Format").
const (
	pitSCShift     = 6 // select counter; 3 is the read-back command
	pitRWShift     = 4 // 0 latch, 1 LSB, 2 MSB, 3 LSB then MSB
	pitModeShift   = 1
	pitBCD         = 0x01
	pitReadBack    = 3
	pitRBNoCount   = 0x20 // read-back: do not latch the count
	pitRBNoStatus  = 0x10 // read-back: do not latch the status
	pitAccessLSB   = 1
	pitAccessMSB   = 2
	pitAccessWord  = 3
	pitStatusOut   = 0x80
	pitStatusNull  = 0x40
	pitModeDefault = 3 // what a BIOS leaves in counter 0
)

// PIT is an 8254. Counting is computed from a Clock rather than ticked: a
// counter remembers the tick at which it was loaded and derives its count
// and output from the elapsed ticks, so reads are exact at any time and the
// device costs nothing between accesses.
//
// Modelled: modes 0 (interrupt on terminal count), 1 (hardware one-shot),
// 2 (rate generator), 3 (square wave), 4 (software strobe) and 5 (hardware
// strobe); binary and BCD counting; LSB, MSB and LSB-then-MSB access with
// their byte toggles; the counter-latch command; the read-back command
// (count and status, including the output and null-count bits); the gate
// (counter 2's from port 0x61; counters 0 and 1 are tied high) pausing
// modes 0 and 4, stopping and restarting modes 2 and 3, and triggering
// modes 1 and 5; a count written while mode 2 or 3 runs taking effect at
// the end of the current period; writing the first byte of a two-byte
// count stopping a mode 0 count.
//
// Approximated: a counter is loaded at the instant its count is written,
// without the extra CLK edge hardware needs; mode 3 with an odd count
// shows counts off by one from the chip's internal sequence (the output
// timing, high for (N+1)/2 and low for (N-1)/2 ticks, is exact); counts of
// 1 in modes 2 and 3, which the datasheet forbids, act as 2.
//
// Interrupts: counter 0's output is driven onto PIC line 0. The VM cannot
// call the PIT on every tick, so it asks NextDeadline for the next rising
// edge, arms a host timer for it, and calls Advance when the timer fires;
// OnReprogram tells it to re-arm after the guest reprograms counter 0.
//
// mu protects everything below it. Lock order: PIT before PIC.
type PIT struct {
	mu  sync.Mutex
	clk Clock
	pic *PIC
	ch  [3]pitChannel

	last     int64 // counter 0 edges are delivered through this tick
	irqLevel bool  // the level last driven on IRQ 0

	// OnReprogram, when not nil, is called after the guest writes counter
	// 0's control word or count, without the PIT's lock held (possibly
	// with the system-control port's): the VM should read NextDeadline
	// again and re-arm its timer. It must not do port I/O. Set it before
	// the PIT is shared.
	OnReprogram func()
}

type pitState uint8

const (
	pitIdle     pitState = iota // no count since the control word
	pitCounting                 // counting from start
	pitPaused                   // modes 0 and 4 with the gate low
	pitStopped                  // modes 2 and 3 with the gate low
	pitArmed                    // modes 1 and 5 waiting for a gate edge
)

// pitChannel is one counter.
type pitChannel struct {
	mode   uint8 // 0-5
	access uint8 // pitAccess*
	bcd    bool
	gate   bool
	state  pitState

	cr uint32 // the count register as loaded: 1..modulus

	// While counting, the count at tick start was startCount (1..modulus
	// for a fresh load, or what was left when a pause ended); for modes 2
	// and 3 the period is n. fired: a terminal count already happened
	// before start. edgeAtStart: start is itself a rising edge (a reload
	// taken from a count written during the previous period).
	start       int64
	startCount  uint32
	n           uint32
	fired       bool
	edgeAtStart bool

	held   uint32 // the count shown while not counting
	resume uint32 // modes 0 and 4: startCount when a pause ends

	// A count written while modes 2 or 3 count becomes the period at the
	// reload at tick pendingAt.
	pending   bool
	pendingAt int64
	pendingN  uint32

	writeHi   bool // the next count byte is the MSB
	lowByte   uint8
	readHi    bool // the next count byte read is the MSB
	latched   bool
	latch     uint16
	stLatched bool
	status    uint8
	nullCount bool
}

// NewPIT returns an 8254 whose counters are in mode 3, binary, LSB-then-
// MSB access, without a count (so idle, output high), counters 0 and 1
// gated on and counter 2 gated off. pic may be nil (counter 0 then drives
// nothing). The PIT drives IRQ 0 high at once: that is its output's level.
func NewPIT(clk Clock, pic *PIC) *PIT {
	p := &PIT{clk: clk, pic: pic}
	for i := range p.ch {
		c := &p.ch[i]
		c.mode, c.access, c.gate = pitModeDefault, pitAccessWord, i != 2
	}
	p.last = pitTicks(clk.Now())
	p.irqLevel = p.ch[0].out(p.last)
	if p.irqLevel && p.pic != nil {
		p.pic.SetLine(0, true)
	}
	return p
}

// pitTicks is the number of PIT input clocks in d, rounded down.
func pitTicks(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	ns := int64(d)
	return ns/1e9*PITFrequency + ns%1e9*PITFrequency/1e9
}

// pitTime is the earliest time at which pitTicks reaches t.
func pitTime(t int64) time.Duration {
	if t <= 0 {
		return 0
	}
	return time.Duration(t/PITFrequency*1e9 + (t%PITFrequency*1e9+PITFrequency-1)/PITFrequency)
}

// In implements PortDevice for 0x40-0x43.
func (p *PIT) In(port uint16, size int) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := pitTicks(p.clk.Now())
	return inBytes(port, size, func(port uint16) uint8 {
		if port < PITCounter0 || port > PITCounter2 {
			return 0xFF // the control register is write-only
		}
		return p.ch[port-PITCounter0].readByte(t)
	})
}

// Out implements PortDevice for 0x40-0x43.
func (p *PIT) Out(port uint16, size int, v uint32) {
	p.mu.Lock()
	t := pitTicks(p.clk.Now())
	reprogrammed := false
	outBytes(port, size, v, func(port uint16, b uint8) {
		if p.writeByte(port, b, t) {
			reprogrammed = true
		}
	})
	p.mu.Unlock()
	if reprogrammed && p.OnReprogram != nil {
		p.OnReprogram()
	}
}

// writeByte reports whether counter 0's programming changed.
// Precondition: mu held.
func (p *PIT) writeByte(port uint16, b uint8, t int64) bool {
	switch {
	case port >= PITCounter0 && port <= PITCounter2:
		i := int(port - PITCounter0)
		if i == 0 {
			p.flush(t)
		}
		c := &p.ch[i]
		c.settleTo(t)
		if !c.writeCount(b, t) {
			return false
		}
		if i == 0 {
			p.rearm(t)
		}
		return i == 0
	case port == PITControl:
		sc := b >> pitSCShift
		if sc == pitReadBack {
			for i := range p.ch {
				if b&(2<<i) != 0 {
					p.ch[i].readBack(b, t)
				}
			}
			return false
		}
		c := &p.ch[sc]
		rw := (b >> pitRWShift) & 3
		if rw == 0 {
			c.latchCount(t)
			return false
		}
		if sc == 0 {
			p.flush(t)
		}
		c.settleTo(t)
		c.control(b, t)
		if sc == 0 {
			p.rearm(t)
			return true
		}
	}
	return false
}

// SetGate sets counter ch's gate input. Only counter 2's is wired (to port
// 0x61 bit 0) on a PC; counters 0 and 1 are tied high.
func (p *PIT) SetGate(ch int, high bool) {
	if ch < 0 || ch > 2 {
		return
	}
	p.mu.Lock()
	t := pitTicks(p.clk.Now())
	if ch == 0 {
		p.flush(t)
	}
	c := &p.ch[ch]
	c.settleTo(t)
	c.setGate(high, t)
	if ch == 0 {
		p.rearm(t)
	}
	p.mu.Unlock()
	if ch == 0 && p.OnReprogram != nil {
		p.OnReprogram()
	}
}

// Output reports the level of counter ch's output now.
func (p *PIT) Output(ch int) bool {
	if ch < 0 || ch > 2 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := pitTicks(p.clk.Now())
	v := p.ch[ch].view(t)
	return v.out(t)
}

// NextDeadline returns the time (on the PIT's Clock) of counter 0's next
// rising edge not yet delivered by Advance, and false when none is coming
// (counter 0 idle, or a one-shot mode past its terminal count).
func (p *PIT) NextDeadline() (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := &p.ch[0]
	var e int64
	if c.pending && c.pendingAt > p.last {
		e = c.nextEdge(p.last)
	} else {
		v := c.view(p.last)
		e = v.nextEdge(p.last)
	}
	if e < 0 {
		return 0, false
	}
	return pitTime(e), true
}

// Advance brings IRQ 0 up to time now: if counter 0's output had one or
// more rising edges since the last call, the PIC sees one rising edge (an
// edge-triggered 8259 latches one request however many were missed); then
// the line is left at the output's current level. A now earlier than a
// previous one is ignored.
func (p *PIT) Advance(now time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flush(pitTicks(now))
}

// flush delivers counter 0's edges in (last, t].
// Precondition: mu held.
func (p *PIT) flush(t int64) {
	if t <= p.last {
		return
	}
	c := &p.ch[0]
	edges := c.edges(p.last, t)
	p.last = t
	if edges > 0 {
		if p.irqLevel {
			p.setIRQ(false)
		}
		p.setIRQ(true)
	}
	if lvl := c.out(t); lvl != p.irqLevel {
		p.setIRQ(lvl)
	}
}

// rearm drives IRQ 0 to counter 0's level after it was reprogrammed at
// tick t; its edges are delivered from t on.
// Precondition: mu held.
func (p *PIT) rearm(t int64) {
	p.last = t
	if lvl := p.ch[0].out(t); lvl != p.irqLevel {
		p.setIRQ(lvl)
	}
}

// Precondition: mu held.
func (p *PIT) setIRQ(level bool) {
	p.irqLevel = level
	if p.pic != nil {
		p.pic.SetLine(0, level)
	}
}

func (c *pitChannel) modulus() uint32 {
	if c.bcd {
		return 10000
	}
	return 0x10000
}

// control applies a control word that selects a mode: all of the
// counter's control logic is reset and it waits for a count.
func (c *pitChannel) control(b uint8, t int64) {
	if c.state == pitCounting {
		c.held = c.count(t)
	}
	c.mode = (b >> pitModeShift) & 7
	if c.mode > 5 {
		c.mode -= 4 // 6 and 7 are aliases of 2 and 3
	}
	c.access = (b >> pitRWShift) & 3
	c.bcd = b&pitBCD != 0
	c.held %= c.modulus()
	c.state = pitIdle
	c.pending, c.fired = false, false
	c.writeHi, c.readHi = false, false
	c.latched, c.stLatched = false, false
	c.nullCount = true
}

// writeCount takes one byte of a count and reports whether it completed
// one.
func (c *pitChannel) writeCount(b uint8, t int64) bool {
	var raw uint16
	switch c.access {
	case pitAccessLSB:
		raw = uint16(b)
	case pitAccessMSB:
		raw = uint16(b) << 8
	default:
		if !c.writeHi {
			c.lowByte, c.writeHi = b, true
			if c.mode == 0 && c.state == pitCounting {
				// Writing the first byte stops a mode 0 count (and its
				// output, already high or not, goes low).
				c.held = c.count(t)
				c.state, c.fired = pitIdle, false
			}
			return false
		}
		c.writeHi = false
		raw = uint16(c.lowByte) | uint16(b)<<8
	}
	c.load(raw, t)
	return true
}

// load puts a complete count into the count register and acts on it as
// the counter's mode says.
func (c *pitChannel) load(raw uint16, t int64) {
	n := uint32(raw)
	if c.bcd {
		n = fromBCD(raw)
	}
	if n == 0 {
		n = c.modulus()
	}
	c.cr = n
	c.nullCount = true
	switch c.mode {
	case 0, 4:
		c.fired = false
		if c.gate {
			c.begin(t, n, false)
		} else {
			c.state, c.held, c.resume = pitPaused, n%c.modulus(), n
		}
	case 2, 3:
		n = max(n, 2)
		switch {
		case c.state == pitCounting:
			e := t - c.start
			c.pending = true
			c.pendingAt = c.start + (floorDiv(e, int64(c.n))+1)*int64(c.n)
			c.pendingN = n
		case c.gate:
			c.n = n
			c.begin(t, n, false)
		default:
			c.state, c.held = pitStopped, n%c.modulus()
		}
	case 1, 5:
		if c.state != pitCounting {
			c.state = pitArmed
		}
	}
}

// begin starts counting at tick t from count.
func (c *pitChannel) begin(t int64, count uint32, edgeAtStart bool) {
	c.state = pitCounting
	c.start, c.startCount, c.edgeAtStart = t, count, edgeAtStart
	c.nullCount = false
}

func (c *pitChannel) setGate(high bool, t int64) {
	if high == c.gate {
		return
	}
	c.gate = high
	switch c.mode {
	case 0, 4:
		switch {
		case !high && c.state == pitCounting:
			e := t - c.start
			sc := int64(c.startCount)
			c.held = c.count(t)
			if c.mode == 0 && e >= sc || c.mode == 4 && e > sc {
				c.fired = true
			}
			if c.fired {
				c.resume = c.held
			} else {
				c.resume = uint32(sc - e)
			}
			c.state = pitPaused
		case high && c.state == pitPaused:
			c.begin(t, c.resume, false)
		}
	case 2, 3:
		switch {
		case !high && c.state == pitCounting:
			c.held = c.count(t)
			if c.pending {
				c.pending = false
			}
			c.state = pitStopped
		case high && c.state == pitStopped:
			c.n = max(c.cr, 2)
			c.begin(t, c.n, false)
		}
	case 1, 5:
		if high && (c.state == pitArmed || c.state == pitCounting) {
			c.fired = false
			c.begin(t, c.cr, false)
		}
	}
}

// settle takes the pending reload.
func (c *pitChannel) settle() {
	c.start, c.n, c.startCount = c.pendingAt, c.pendingN, c.pendingN
	c.edgeAtStart, c.pending, c.nullCount = true, false, false
}

// settleTo takes the pending reload if tick t has reached it.
func (c *pitChannel) settleTo(t int64) {
	if c.pending && t >= c.pendingAt {
		c.settle()
	}
}

// view is the counter as it stands at tick t, for reading without
// changing it.
func (c *pitChannel) view(t int64) pitChannel {
	v := *c
	v.settleTo(t)
	return v
}

// count is the counting element at tick t (0..modulus-1, binary).
// Precondition: no pending reload before t (see view).
func (c *pitChannel) count(t int64) uint32 {
	if c.state != pitCounting {
		return c.held
	}
	m := int64(c.modulus())
	e := t - c.start
	var v int64
	switch c.mode {
	case 2:
		n := int64(c.n)
		v = n - e%n
	case 3:
		n := int64(c.n)
		p := e % n
		if half := (n + 1) / 2; p >= half {
			p -= half
		}
		v = n - 2*p
	default:
		v = (int64(c.startCount) - e) % m
		if v < 0 {
			v += m
		}
	}
	return uint32(v % m)
}

// out is the output level at tick t.
// Precondition: no pending reload before t (see view).
func (c *pitChannel) out(t int64) bool {
	switch c.state {
	case pitIdle:
		return c.mode != 0
	case pitPaused:
		return c.mode != 0 || c.fired
	case pitStopped, pitArmed:
		return true
	}
	e := t - c.start
	sc := int64(c.startCount)
	switch c.mode {
	case 0, 1:
		return c.fired || e >= sc
	case 2:
		return e%int64(c.n) != int64(c.n)-1
	case 3:
		return e%int64(c.n) < (int64(c.n)+1)/2
	default: // 4, 5: low for the one tick at terminal count
		return c.fired || e != sc
	}
}

// edgesIn counts the output's rising edges in ticks (a, b] of the current
// schedule.
func (c *pitChannel) edgesIn(a, b int64) int64 {
	if c.state != pitCounting || b <= a {
		return 0
	}
	ea, eb := a-c.start, b-c.start
	sc := int64(c.startCount)
	switch c.mode {
	case 0, 1:
		if !c.fired && ea < sc && sc <= eb {
			return 1
		}
	case 4, 5:
		if !c.fired && ea < sc+1 && sc+1 <= eb {
			return 1
		}
	case 2, 3:
		if eb < 0 {
			return 0
		}
		ea = max(ea, -1)
		n := int64(c.n)
		k := floorDiv(eb, n) - floorDiv(ea, n)
		if !c.edgeAtStart && ea < 0 {
			k-- // the start of a fresh count is not an edge
		}
		return max(k, 0)
	}
	return 0
}

// edges counts the rising edges in (a, b], taking a pending reload that
// falls inside.
func (c *pitChannel) edges(a, b int64) int64 {
	if !c.pending || c.pendingAt > b {
		return c.edgesIn(a, b)
	}
	var k int64
	if a < c.pendingAt {
		k = c.edgesIn(a, c.pendingAt)
	}
	c.settle()
	return k + c.edgesIn(max(a, c.pendingAt), b)
}

// nextEdge is the tick of the first rising edge after tick a of the
// current schedule, or -1.
func (c *pitChannel) nextEdge(a int64) int64 {
	if c.state != pitCounting {
		return -1
	}
	sc := int64(c.startCount)
	switch c.mode {
	case 0, 1:
		if !c.fired && c.start+sc > a {
			return c.start + sc
		}
	case 4, 5:
		if !c.fired && c.start+sc+1 > a {
			return c.start + sc + 1
		}
	case 2, 3:
		ea, n := a-c.start, int64(c.n)
		if ea < 0 {
			if c.edgeAtStart {
				return c.start
			}
			return c.start + n
		}
		return c.start + (ea/n+1)*n
	}
	return -1
}

// encoded is v as the counter presents it: binary or four BCD digits.
func (c *pitChannel) encoded(v uint32) uint16 {
	if c.bcd {
		return toBCD(v)
	}
	return uint16(v)
}

// latchCount is the counter-latch command: the first one holds the count
// until it is read; further ones before that are ignored.
func (c *pitChannel) latchCount(t int64) {
	if c.latched {
		return
	}
	v := c.view(t)
	c.latch, c.latched = c.encoded(v.count(t)), true
}

// readBack latches what the read-back command b asks of this counter.
func (c *pitChannel) readBack(b uint8, t int64) {
	if b&pitRBNoStatus == 0 && !c.stLatched {
		v := c.view(t)
		s := c.access<<pitRWShift | c.mode<<pitModeShift
		if c.bcd {
			s |= pitBCD
		}
		if v.out(t) {
			s |= pitStatusOut
		}
		if v.nullCount || v.state == pitIdle {
			s |= pitStatusNull
		}
		c.status, c.stLatched = s, true
	}
	if b&pitRBNoCount == 0 {
		c.latchCount(t)
	}
}

// readByte reads the counter's port: a latched status first, then a
// latched count, else the live count, a byte at a time as the access mode
// says.
func (c *pitChannel) readByte(t int64) uint8 {
	if c.stLatched {
		c.stLatched = false
		return c.status
	}
	var w uint16
	if c.latched {
		w = c.latch
	} else {
		v := c.view(t)
		w = c.encoded(v.count(t))
	}
	switch c.access {
	case pitAccessLSB:
		c.latched = false
		return uint8(w)
	case pitAccessMSB:
		c.latched = false
		return uint8(w >> 8)
	}
	if c.readHi {
		c.readHi, c.latched = false, false
		return uint8(w >> 8)
	}
	c.readHi = true
	return uint8(w)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// toBCD encodes v (below 10000) as four packed BCD digits.
func toBCD(v uint32) uint16 {
	var w uint16
	for i := 0; i < 4; i++ {
		w |= uint16(v%10) << (4 * i)
		v /= 10
	}
	return w
}

// fromBCD decodes four packed BCD digits; a nibble above 9 counts for its
// binary value, as a counter fed bad BCD would misbehave in some way too.
func fromBCD(w uint16) uint32 {
	var v uint32
	for i := 3; i >= 0; i-- {
		v = v*10 + uint32(w>>(4*i)&0xF)
	}
	return v
}
