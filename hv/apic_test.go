package hv

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
)

// mailboxGuest starts vCPU 1 through the ACPI wake-up mailbox after three
// requests that must do nothing (an undefined command, a wake-up of vCPU
// 0, one of a vCPU that does not exist), checks that a second wake-up
// does not start vCPU 1 again, and exits with 40 + vCPU 1's APIC ID as its
// LAPIC reads it + 16 * vCPU 0's. Assembled with GNU as from:
//
//	_start:
//		/* The loader maps RAM only: map the mailbox's and the LAPIC's 2 MiB
//		 * pages in its page directory of the fourth GiB (at 0x6000). */
//		mov eax, 0xFEA00083
//		mov qword ptr [0x6000 + 501 * 8], rax
//		mov eax, 0xFEE00083
//		mov qword ptr [0x6000 + 503 * 8], rax
//		mov r11, 0xa000
//		xor eax, eax               /* version: declares nothing, but is callable first */
//		call r11
//		/* A bogus command, a wake-up of vCPU 0, and of a vCPU that does not
//		 * exist: each is taken and cleared. */
//		mov eax, 0xFEBFF000
//		mov word ptr [rax], 7
//		mov dx, word ptr [rax]
//		test dx, dx
//		jnz fail
//		mov dword ptr [rax+4], 0
//		lea rcx, [rip+ap]
//		mov qword ptr [rax+8], rcx
//		mov word ptr [rax], 1
//		mov dword ptr [rax+4], 9
//		mov word ptr [rax], 1
//		/* Wake vCPU 1 at ap. */
//		mov dword ptr [rax+4], 1
//		mov word ptr [rax], 1
//	1:	cmp word ptr [rax], 0
//		jne 1b
//		lea rcx, [rip+flag]
//	2:	pause
//		mov edx, dword ptr [rcx]
//		test edx, edx
//		jz 2b
//		/* A second wake-up of vCPU 1 must not restart it: it would set flag2. */
//		mov word ptr [rax], 1
//		mov ecx, 1000000
//	3:	pause
//		dec ecx
//		jnz 3b
//		lea rcx, [rip+flag2]
//		cmp dword ptr [rcx], 0
//		jne fail
//		/* Exit code: vCPU 1's APIC ID (from its LAPIC) + 16 * vCPU 0's + 40. */
//		mov esi, edx
//		shr esi, 24
//		mov ebx, 0xFEE00020
//		mov edx, dword ptr [rbx]
//		shr edx, 20
//		add esi, edx
//		add esi, 40
//		jmp out
//	fail:
//		mov esi, 1
//	out:
//		mov eax, 15
//		xor edi, edi
//		call r11
//		hlt
//	ap:
//		lea rcx, [rip+flag2]
//		lea rdx, [rip+flag]
//		cmp dword ptr [rdx], 0
//		jz 4f
//		mov dword ptr [rcx], 1
//	4:	mov ebx, 0xFEE00020
//		mov eax, dword ptr [rbx]
//		mov dword ptr [rdx], eax
//	5:	hlt
//		jmp 5b
//		.align 8
//	flag:	.long 0
//	flag2:	.long 0
var mailboxGuest = []byte{
	0xb8, 0x83, 0x00, 0xa0, 0xfe, 0x48, 0x89, 0x04, 0x25, 0xa8, 0x6f, 0x00,
	0x00, 0xb8, 0x83, 0x00, 0xe0, 0xfe, 0x48, 0x89, 0x04, 0x25, 0xb8, 0x6f,
	0x00, 0x00, 0x49, 0xc7, 0xc3, 0x00, 0xa0, 0x00, 0x00, 0x31, 0xc0, 0x41,
	0xff, 0xd3, 0xb8, 0x00, 0xf0, 0xbf, 0xfe, 0x66, 0xc7, 0x00, 0x07, 0x00,
	0x66, 0x8b, 0x10, 0x66, 0x85, 0xd2, 0x75, 0x76, 0xc7, 0x40, 0x04, 0x00,
	0x00, 0x00, 0x00, 0x48, 0x8d, 0x0d, 0x78, 0x00, 0x00, 0x00, 0x48, 0x89,
	0x48, 0x08, 0x66, 0xc7, 0x00, 0x01, 0x00, 0xc7, 0x40, 0x04, 0x09, 0x00,
	0x00, 0x00, 0x66, 0xc7, 0x00, 0x01, 0x00, 0xc7, 0x40, 0x04, 0x01, 0x00,
	0x00, 0x00, 0x66, 0xc7, 0x00, 0x01, 0x00, 0x66, 0x83, 0x38, 0x00, 0x75,
	0xfa, 0x48, 0x8d, 0x0d, 0x74, 0x00, 0x00, 0x00, 0xf3, 0x90, 0x8b, 0x11,
	0x85, 0xd2, 0x74, 0xf8, 0x66, 0xc7, 0x00, 0x01, 0x00, 0xb9, 0x40, 0x42,
	0x0f, 0x00, 0xf3, 0x90, 0xff, 0xc9, 0x75, 0xfa, 0x48, 0x8d, 0x0d, 0x59,
	0x00, 0x00, 0x00, 0x83, 0x39, 0x00, 0x75, 0x16, 0x89, 0xd6, 0xc1, 0xee,
	0x18, 0xbb, 0x20, 0x00, 0xe0, 0xfe, 0x8b, 0x13, 0xc1, 0xea, 0x14, 0x01,
	0xd6, 0x83, 0xc6, 0x28, 0xeb, 0x05, 0xbe, 0x01, 0x00, 0x00, 0x00, 0xb8,
	0x0f, 0x00, 0x00, 0x00, 0x31, 0xff, 0x41, 0xff, 0xd3, 0xf4, 0x48, 0x8d,
	0x0d, 0x27, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x15, 0x1c, 0x00, 0x00, 0x00,
	0x83, 0x3a, 0x00, 0x74, 0x06, 0xc7, 0x01, 0x01, 0x00, 0x00, 0x00, 0xbb,
	0x20, 0x00, 0xe0, 0xfe, 0x8b, 0x03, 0x89, 0x02, 0xf4, 0xeb, 0xfd, 0x0f,
	0x1f, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
}

func TestMailboxStartsAP(t *testing.T) {
	for _, mode := range []cpu.Mode{cpu.ModeTrap, cpu.ModeHWAssist} {
		var out bytes.Buffer
		budget := mm.NewBudget(1 << 30)
		vm, err := New(Config{Kernel: elfImage(mailboxGuest), MemBytes: 16 << 20, VCPUs: 2, Mode: mode, Budget: budget, Console: &out})
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := vm.guest(acpiBase, 8); string(b) != "RSD PTR " {
			t.Errorf("%v: no RSDP at %#x: % x", mode, acpiBase, b)
		}
		for i, v := range vm.vcpus {
			if _, _, _, edx := v.cpu.CPUID(1, 0); edx&cpu.Feat1EDXAPIC == 0 {
				t.Errorf("%v: vCPU %d: CPUID does not advertise its APIC", mode, i)
			}
		}
		inv := strings.Join(vm.Inventory(), "\n")
		for _, want := range []string{"legacy-pc acpi-pm 0x000600-0x00060b (port I/O)", "lapic  0xfee00000-0xfee00fff, one per vCPU, 2 (MMIO)", "ioapic 0xfec00000-0xfec00fff, 24 pins, ISA IRQ n on pin n (MMIO)", "acpi-wakeup-mailbox 0xfebff000-0xfebfffff (MMIO)"} {
			if !strings.Contains(inv, want) {
				t.Errorf("%v: the inventory has no %q:\n%s", mode, want, inv)
			}
		}
		done := make(chan ExitStatus, 1)
		go func() { done <- vm.Run() }()
		var st ExitStatus
		select {
		case st = <-done:
		case <-time.After(time.Minute):
			vm.Stop(124, "test deadline")
			st = <-done
		}
		if st.Code != 41 {
			t.Errorf("%v: exit %+v, want 41 (vCPU 1 started once, with APIC ID 1); console %q", mode, st, out.String())
		}
		if budget.Reserved() != 0 {
			t.Errorf("%v: memory not released", mode)
		}
	}
}

// TestOneVCPUHasNoAPIC: a VM of one vCPU keeps the PIC-only PC: no APIC in
// CPUID, no ACPI tables, nothing at the LAPIC's page.
func TestOneVCPUHasNoAPIC(t *testing.T) {
	for _, mode := range []cpu.Mode{cpu.ModeTrap, cpu.ModeHWAssist, cpu.ModePV} {
		vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: mode, Budget: mm.NewBudget(1 << 30), DeterministicTSC: true})
		if err != nil {
			t.Fatal(err)
		}
		if inv := strings.Join(vm.Inventory(), "\n"); strings.Contains(inv, "lapic") || strings.Contains(inv, "acpi") {
			t.Errorf("%v: one vCPU's inventory lists APIC devices:\n%s", mode, inv)
		}
		if vm.apic != nil || vm.vcpus[0].lapic != nil {
			t.Errorf("%v: one vCPU has a LAPIC", mode)
		}
		if _, _, _, edx := vm.vcpus[0].cpu.CPUID(1, 0); edx&cpu.Feat1EDXAPIC != 0 {
			t.Errorf("%v: CPUID advertises an APIC", mode)
		}
		if b, _ := vm.guest(acpiBase, 8); string(b) == "RSD PTR " {
			t.Errorf("%v: ACPI tables for one vCPU", mode)
		}
		e := cpu.Exit{Reason: cpu.ExitMMIO}
		e.MMIO.Addr, e.MMIO.Size = 0xFEE00020, 4
		if vm.vcpus[0].apicMMIO(&e) {
			t.Errorf("%v: the LAPIC page answers", mode)
		}
		vm.Run()
	}
}
