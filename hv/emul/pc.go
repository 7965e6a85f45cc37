package emul

import (
	"fmt"
	"io"
	"time"
)

// PC is the legacy PC that unmodified guests (trap and hwassist modes)
// need, built on one port bus:
//
//	| device | ports         | IRQ | type   |
//	|--------|---------------|-----|--------|
//	| pic1   | 0x20-0x21     | -   | PIC    |
//	| pic2   | 0xA0-0xA1     | -   | PIC    |
//	| elcr   | 0x4D0-0x4D1   | -   | PIC    |
//	| pit    | 0x40-0x43     | 0   | PIT    |
//	| port61 | 0x61          | -   | SysCtl |
//	| rtc    | 0x70-0x71     | -   | RTC    |
//	| post   | 0x80          | -   | SysCtl |
//	| port92 | 0x92          | -   | SysCtl |
//	| com1   | 0x3F8-0x3FF   | 4   | UART   |
//
// Each device serializes itself; the lock order between them is SysCtl,
// then UART or PIT, then PIC. The VM sets PIC.OnChange and PIT.OnReprogram
// before running the guest.
type PC struct {
	PIC  *PIC
	PIT  *PIT
	UART *UART
	RTC  *RTC
	Sys  *SysCtl
	KBD  *I8042 // only the reset lines of the keyboard controller

	devices []PCDevice
}

// PCDevice is one port range of the PC, as registered on the bus.
type PCDevice struct {
	Name        string
	First, Last uint16
	IRQ         int // the PIC line the device drives, or -1
	Dev         PortDevice
}

func (d PCDevice) String() string {
	s := fmt.Sprintf("%-6s 0x%04x-0x%04x", d.Name, d.First, d.Last)
	if d.IRQ >= 0 {
		s += fmt.Sprintf(" irq %d", d.IRQ)
	}
	return s
}

// NewPC builds the legacy PC and registers it on bus. clk is the devices'
// time base (a RealClock from now when nil), console receives the UART's
// output (discarded when nil), wall is the RTC's date and time (time.Now
// when nil). The bus must not claim any of the PC's ports already: that is
// a bug in the caller, and NewPC panics on it.
func NewPC(bus *Bus, clk Clock, console io.Writer, wall func() time.Time) *PC {
	if clk == nil {
		clk = NewRealClock()
	}
	pc := &PC{PIC: NewPIC()}
	pc.PIT = NewPIT(clk, pc.PIC)
	pc.UART = NewUART(console, pc.PIC, COM1IRQ)
	pc.RTC = NewRTC(wall)
	pc.RTC.clk = clk
	pc.Sys = NewSysCtl(pc.PIT)
	pc.KBD = &I8042{}
	pc.devices = []PCDevice{
		{"pic1", PICMasterCmd, PICMasterData, -1, pc.PIC},
		{"pit", PITCounter0, PITControl, 0, pc.PIT},
		{"kbd", i8042Data, i8042Data, -1, pc.KBD},
		{"port61", SysCtlPortB, SysCtlPortB, -1, pc.Sys},
		{"kbdctl", i8042Status, i8042Status, -1, pc.KBD},
		{"rtc", RTCIndex, RTCData, -1, pc.RTC},
		{"post", POSTPort, POSTPort, -1, pc.Sys},
		{"port92", SysCtlPortA, SysCtlPortA, -1, pc.Sys},
		{"pic2", PICSlaveCmd, PICSlaveData, -1, pc.PIC},
		{"com1", COM1Base, COM1Base + 7, COM1IRQ, pc.UART},
		{"elcr", PICELCRMaster, PICELCRSlave, -1, pc.PIC},
	}
	for _, d := range pc.devices {
		if err := bus.Register(d.Name, d.First, d.Last, d.Dev); err != nil {
			panic(err)
		}
	}
	return pc
}

// Devices lists the PC's port ranges in port order.
func (pc *PC) Devices() []PCDevice {
	return append([]PCDevice(nil), pc.devices...)
}

// inBytes carries out a size-byte read as byte reads of consecutive ports,
// little-endian, as the ISA bus does for 8-bit devices.
func inBytes(port uint16, size int, in func(uint16) uint8) uint32 {
	var v uint32
	for i := 0; i < size && i < 4; i++ {
		v |= uint32(in(port+uint16(i))) << (8 * i)
	}
	return v
}

// outBytes carries out a size-byte write as byte writes of consecutive
// ports, low byte first.
func outBytes(port uint16, size int, v uint32, out func(uint16, uint8)) {
	for i := 0; i < size && i < 4; i++ {
		out(port+uint16(i), uint8(v>>(8*i)))
	}
}
