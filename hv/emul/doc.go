// Package emul is trap-and-emulate: it carries out, on a vCPU's virtual
// state, the privileged instructions an engine hands to the hypervisor as
// ExitPrivileged (every one in trap mode; in pv mode those a guest executes
// before or, as violations, after PV start-up). It also holds the legacy PC
// devices of trap and hwassist modes (PIC, PIT, UART, RTC, system control
// ports, on a port-I/O bus). Trap mode's shadow MMU is modelled in the
// engine (hv/interp/shadow.go): a guest page-table write exits as
// ExitShadowFault and needs no emulation here.
//
// Instructions are decoded with golang.org/x/arch/x86/x86asm, whose known
// defects are handled first: ENDBR64 and several 0F 01 forms are recognised
// from their bytes before x86asm sees them; Op == 0 is treated as failure;
// a 32-bit displacement comes back zero-extended in Mem.Disp and is
// sign-extended here.
//
// Each device, and the PC as a whole, has a Save/Restore pair (the
// *_state.go files) whose state types hold every register, latch, queue
// and counter; the PIT's and RTC's times are placed on the devices' Clock.
// A saved state is operator input: Restore validates it and changes
// nothing when it refuses.
//
// Trust boundary: instruction bytes and register values are the guest's and
// hostile; a bad operand becomes a guest exception, never a host panic.
package emul
