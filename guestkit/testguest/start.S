/*
 * Entry point and the few routines that need exact register control.
 * Boot contract: docs/boot.md (64-bit mode, CPL 0, RDI = start info).
 */
	.section .text.start, "ax"
	.globl _start
_start:
	cli
	lea	boot_stack_top(%rip), %rsp
	mov	%rdi, %r12
	/* The loader zeroes the .bss tail; do it again rather than rely on it. */
	lea	__bss_start(%rip), %rdi
	lea	__bss_end(%rip), %rcx
	sub	%rdi, %rcx
	xor	%eax, %eax
	cld
	rep stosb
	mov	%r12, %rdi
	xor	%ebp, %ebp
	call	tg_main
1:	jmp	1b

/*
 * The other vCPUs' entry (vcpu_up): RSP and RDI (the vCPU's index) come
 * from the context; the rest is the loader's entry state.
 */
	.globl ap_entry
ap_entry:
	cli
	xor	%ebp, %ebp
	call	ap_main
2:	jmp	2b

	.text
/* Reload CS with a far return and the data segments after load_gdt. */
	.globl reload_segments
reload_segments:
	pushq	$0x10
	lea	1f(%rip), %rax
	push	%rax
	lretq
1:	mov	$0x18, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	ret

/*
 * u64 hc_regs_probe(u64 in[16], u64 out[16])
 * Loads every general register but RSP from in[] (index order: rax rbx rcx
 * rdx rsi rdi rbp r8 .. r15; in[0] is the call number), calls the hypercall
 * page, and stores every register into out[] in the same order. Returns RAX.
 */
	.globl hc_regs_probe
hc_regs_probe:
	push	%rbx
	push	%rbp
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	push	%rsi			/* out */
	mov	%rdi, %rax
	mov	8(%rax), %rbx
	mov	16(%rax), %rcx
	mov	24(%rax), %rdx
	mov	32(%rax), %rsi
	mov	40(%rax), %rdi
	mov	48(%rax), %rbp
	mov	56(%rax), %r8
	mov	64(%rax), %r9
	mov	72(%rax), %r10
	mov	80(%rax), %r11
	mov	88(%rax), %r12
	mov	96(%rax), %r13
	mov	104(%rax), %r14
	mov	112(%rax), %r15
	mov	0(%rax), %rax
	call	*pvisor_hypercall_entry(%rip)
	push	%rax
	mov	8(%rsp), %rax		/* out */
	mov	%rbx, 8(%rax)
	mov	%rcx, 16(%rax)
	mov	%rdx, 24(%rax)
	mov	%rsi, 32(%rax)
	mov	%rdi, 40(%rax)
	mov	%rbp, 48(%rax)
	mov	%r8, 56(%rax)
	mov	%r9, 64(%rax)
	mov	%r10, 72(%rax)
	mov	%r11, 80(%rax)
	mov	%r12, 88(%rax)
	mov	%r13, 96(%rax)
	mov	%r14, 104(%rax)
	mov	%r15, 112(%rax)
	pop	%rcx
	mov	%rcx, 0(%rax)
	mov	%rcx, %rax
	pop	%rsi
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbp
	pop	%rbx
	ret

/*
 * void enter_user(u64 rip, u64 rsp)
 * IRETQ to ring 3 at rip with stack rsp, interrupts off. The ring-3 code
 * must trap; the trap handler sends control to user_return, which returns
 * from enter_user on the kernel stack saved here.
 */
	.globl enter_user
enter_user:
	push	%rbx
	push	%rbp
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, kernel_saved_rsp(%rip)
	pushq	$0x2b			/* SS: user data, RPL 3 */
	push	%rsi			/* RSP */
	pushq	$0x2			/* RFLAGS: IF clear */
	pushq	$0x33			/* CS: user 64-bit code, RPL 3 */
	push	%rdi			/* RIP */
	iretq

	.globl user_return
user_return:
	mov	kernel_saved_rsp(%rip), %rsp
	mov	$0x18, %eax
	mov	%eax, %ds
	mov	%eax, %es
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbp
	pop	%rbx
	ret

/* Ring-3 code: a hypercall, which must raise #UD. */
	.globl user_hypercall, user_after_hypercall
user_hypercall:
	xor	%eax, %eax
	call	*pvisor_hypercall_entry(%rip)
user_after_hypercall:
	ud2
1:	jmp	1b

/* Ring-3 code: a read of the supervisor-only page at user_target. */
	.globl user_read, user_after_read
user_read:
	mov	user_target(%rip), %rcx
	mov	(%rcx), %rax
user_after_read:
	ud2
1:	jmp	1b

	.data
	.balign 8
	.globl kernel_saved_rsp, user_target
kernel_saved_rsp:	.quad 0
user_target:		.quad 0

	.bss
	.balign 4096
boot_stack:
	.skip 32768
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
