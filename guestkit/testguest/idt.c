/* The guest's own GDT and IDT, the trap dispatcher and the event upcall handler. */
#include "testguest.h"

static u64 gdt[10] __attribute__((aligned(16)));

struct idt_gate {
	u16 off_lo, sel;
	u8 ist, attr;
	u16 off_mid;
	u32 off_hi, zero;
};
_Static_assert(sizeof(struct idt_gate) == 16, "idt gate size");
static struct idt_gate idt[256] __attribute__((aligned(16)));

u8 ist1_stack[IST1_SIZE] __attribute__((aligned(16)));
u8 rsp0_stack[RSP0_SIZE] __attribute__((aligned(16)));
struct pvisor_shared_info shinfo __attribute__((aligned(4096)));

volatile struct trap_record trap_rec;
volatile int trap_armed;
volatile u64 trap_fixup;
volatile int user_trip;
volatile u64 upcalls;
volatile u64 port_events[PVISOR_MAX_PORTS];
int (*trap_hook)(struct trap_frame *f);

u64 gdt_base(void) { return (u64)gdt; }
u64 idt_base(void) { return (u64)idt; }
u64 gdt_limit(void) { return sizeof(gdt) - 1; }
u64 idt_limit(void) { return sizeof(idt) - 1; }

/* Linux layout, as the loader's; the TSS descriptor is copied from the loader's GDT
 * so that it keeps describing the TSS that TR already holds. */
void build_gdt(void)
{
	struct __attribute__((packed)) {
		u16 limit;
		u64 base;
	} cur;
	const u64 *old;

	__asm__ volatile("sgdt %0" : "=m"(cur));
	old = (const u64 *)cur.base;
	gdt[0] = 0;
	gdt[1] = 0x00cf9b000000ffffUL; /* 0x08 kernel 32-bit code */
	gdt[2] = 0x00af9b000000ffffUL; /* 0x10 kernel 64-bit code */
	gdt[3] = 0x00cf93000000ffffUL; /* 0x18 kernel data */
	gdt[4] = 0x00cffb000000ffffUL; /* 0x20 user 32-bit code */
	gdt[5] = 0x00cff3000000ffffUL; /* 0x28 user data */
	gdt[6] = 0x00affb000000ffffUL; /* 0x30 user 64-bit code */
	gdt[7] = 0;
	if (cur.limit >= 0x4f) {
		gdt[8] = old[8];
		gdt[9] = old[9];
	} else {
		/* 64-bit TSS (busy) at the loader's address 0x8100, limit 0x67. */
		gdt[8] = 0x67UL | (0x8100UL << 16) | (0x8bUL << 40);
		gdt[9] = 0;
	}
}

void set_gate(int v, u64 handler, int ist)
{
	idt[v].off_lo = (u16)handler;
	idt[v].sel = SEL_KCODE;
	idt[v].ist = (u8)ist;
	idt[v].attr = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
	idt[v].off_mid = (u16)(handler >> 16);
	idt[v].off_hi = (u32)(handler >> 32);
	idt[v].zero = 0;
}

void build_idt(void)
{
	for (int v = 0; v < 32; v++)
		set_gate(v, trap_stubs[v], v == 3 ? 1 : 0); /* int3 runs on IST1 */
	set_gate(UPCALL_VECTOR, (u64)trap_upcall, 0);
}

void handle_upcall(void)
{
	volatile struct pvisor_vcpu_info *vi = &shinfo.vcpu[0];

	upcalls++;
	do {
		u64 sel;

		vi->upcall_pending = 0;
		sel = __atomic_exchange_n(&shinfo.vcpu[0].pending_sel, 0, __ATOMIC_SEQ_CST);
		while (sel) {
			unsigned w = __builtin_ctzl(sel);
			u64 pend;

			sel &= sel - 1;
			if (w >= 8)
				continue;
			pend = ((volatile u64 *)shinfo.evtchn_pending)[w] &
			       ~((volatile u64 *)shinfo.evtchn_mask)[w];
			while (pend) {
				unsigned b = __builtin_ctzl(pend);

				pend &= pend - 1;
				__atomic_fetch_and(&shinfo.evtchn_pending[w], ~(1UL << b), __ATOMIC_SEQ_CST);
				port_events[w * 64 + b]++;
			}
		}
	} while (vi->upcall_pending);
}

static void record(struct trap_frame *f)
{
	u64 cr2 = 0;

	/* A privileged read: in pv mode it exits and the hypervisor emulates it. */
	if (f->vector == 14)
		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	trap_rec.vector = f->vector;
	trap_rec.error = f->error;
	trap_rec.rip = f->rip;
	trap_rec.cs = f->cs;
	trap_rec.rsp = f->rsp;
	trap_rec.cr2 = cr2;
	trap_rec.frame = (u64)f;
	trap_rec.count++;
}

void trap_dispatch(struct trap_frame *f)
{
	if (trap_hook && trap_hook(f))
		return;
	if (f->vector == UPCALL_VECTOR) {
		handle_upcall();
		return;
	}
	if (user_trip && (f->cs & 3) == 3) {
		record(f);
		user_trip = 0;
		f->rip = (u64)user_return;
		f->cs = SEL_KCODE;
		f->ss = SEL_KDATA;
		f->rsp = kernel_saved_rsp;
		f->rflags = 0x2;
		return;
	}
	if (trap_armed) {
		record(f);
		trap_armed = 0;
		if (trap_fixup)
			f->rip = trap_fixup;
		trap_fixup = 0;
		return;
	}
	u64 cr2 = 0;
	if (f->vector == 14)
		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	printf("not ok - unexpected trap: vector %lu error 0x%lx rip 0x%lx cs 0x%lx rsp 0x%lx cr2 0x%lx\n",
	       f->vector, f->error, f->rip, f->cs, f->rsp, cr2);
	checks_failed++;
	finish();
}
