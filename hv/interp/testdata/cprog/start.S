/*
 * Entry point of the freestanding test programs. The test sets RSP and the
 * arguments of main (RDI, RSI, RDX, RCX, R8, R9); main's result is stored
 * at the fixed address 0x1ff000 and left in RAX, then the CPU halts.
 */
	.section .text.start, "ax"
	.globl _start
_start:
	andq	$-16, %rsp
	call	main
	movq	%rax, 0x1ff000
	hlt
1:	jmp	1b

	.section .note.GNU-stack, "", @progbits
