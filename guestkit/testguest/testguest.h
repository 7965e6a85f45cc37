/*
 * pvisor freestanding test guest: shared declarations.
 *
 * The guest runs identity-mapped in ring 0 (virtual == guest-physical), so a
 * pointer to any of its objects is also the guest-physical address hypercalls
 * want.
 */
#ifndef TESTGUEST_H
#define TESTGUEST_H

#include <stdarg.h>
#include <pvisor/hypercall.h>

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef signed char s8;
typedef int s32;
typedef long s64;

#define PAGE_SIZE 4096UL
#define barrier() __asm__ volatile("" ::: "memory")

/* Segment selectors of the guest's GDT (Linux layout, as the loader's). */
#define SEL_KCODE 0x10
#define SEL_KDATA 0x18
#define SEL_UDATA 0x2b
#define SEL_UCODE 0x33
#define SEL_TSS 0x40

/* Vector of the event upcall. */
#define UPCALL_VECTOR 0xf0

/* Register file saved by the trap entry stubs (traps.S), lowest address first. */
struct trap_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8;
	u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector, error;
	u64 rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/* What the last expected trap looked like. */
struct trap_record {
	u64 count;
	u64 vector, error, rip, cs, rsp, cr2;
	u64 frame; /* address of the trap frame: tells which stack was used */
};

/* lib.c */
u64 strlen(const char *s);
void *memset(void *d, int c, u64 n);
void *memcpy(void *d, const void *s, u64 n);
int memcmp(const void *a, const void *b, u64 n);
int vsnprintf(char *buf, u64 cap, const char *fmt, va_list ap);
int snprintf(char *buf, u64 cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_enable(void);
u64 parse_u64(const char *s, const char **end);
const char *cmdline_find(const char *cmdline, const char *key);

/* main.c */
extern struct pvisor_start_info *start_info;
extern u64 checks_ok, checks_failed;
void check(int cond, const char *desc);
void check_eq(s64 got, s64 want, const char *desc);
void check_u(u64 got, u64 want, const char *desc);
void finish(void) __attribute__((noreturn));

static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

/* idt.c */
extern volatile struct trap_record trap_rec;
extern volatile int trap_armed;  /* 1: the next trap is expected */
extern volatile u64 trap_fixup;  /* RIP to resume at (0: resume where the CPU says) */
extern volatile int user_trip;   /* a trap from ring 3 returns to enter_user's caller */
extern volatile u64 upcalls;
extern int (*trap_hook)(struct trap_frame *f); /* if set, sees every trap first; 1: handled */
extern volatile u64 port_events[PVISOR_MAX_PORTS];
extern struct pvisor_shared_info shinfo;
extern u8 ist1_stack[], rsp0_stack[];
#define IST1_SIZE 8192
#define RSP0_SIZE 8192
void trap_dispatch(struct trap_frame *f);
u64 gdt_base(void);
u64 idt_base(void);
u64 gdt_limit(void);
u64 idt_limit(void);
void build_gdt(void);
void build_idt(void);
void set_gate(int v, u64 handler, int ist);
void handle_upcall(void);

/* start.S / traps.S */
void reload_segments(void);
u64 hc_regs_probe(u64 in[16], u64 out[16]);
void enter_user(u64 rip, u64 rsp);
extern char user_return[], user_hypercall[], user_after_hypercall[], user_read[], user_after_read[];
extern volatile u64 user_target;
extern volatile u64 kernel_saved_rsp;
extern u64 trap_stubs[32];
extern char trap_upcall[];

/* checks.c */
void run_checks(void);
void run_bench(const char *name, u64 iters) __attribute__((noreturn));
void spin(void) __attribute__((noreturn));
/* spin=KIND[,KIND...]: the exits spin_exits makes every iteration. */
#define SPIN_HYPERCALL 1UL
#define SPIN_CPUID 2UL
#define SPIN_IO 4UL
#define SPIN_MMIO 8UL
#define SPIN_MSR 16UL
void spin_exits(u64 kinds) __attribute__((noreturn));
void idle(void) __attribute__((noreturn));
void steal(void) __attribute__((noreturn));
void clockpause(void) __attribute__((noreturn));
void count(u64 steps) __attribute__((noreturn));
void fill(void) __attribute__((noreturn));
void balloon_driver(void) __attribute__((noreturn));
void run_scan(void);
u64 pvclock_now(void);

/* smp.c */
void check_smp_calls(void);
void smp(void) __attribute__((noreturn));
void ap_main(u64 id) __attribute__((noreturn));

/* monitor.c */
void plant(const char *hex, u64 at) __attribute__((noreturn));
void monitor(const char *hex) __attribute__((noreturn));

/* hostile.c */
void hostile(const char *cmdline) __attribute__((noreturn));

#endif
