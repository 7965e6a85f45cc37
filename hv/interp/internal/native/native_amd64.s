#include "textflag.h"

// func call(fn uintptr)
//
// An ABI0 function: the generated code it calls saves and restores every
// register Go cares about (SP, BP, BX, R12-R15 including R14 = g) itself, and
// the ABI0-to-ABIInternal transition re-establishes R14 and X15 on return.
TEXT ·call(SB), NOSPLIT, $0-8
	MOVQ fn+0(FP), AX
	CALL AX
	RET

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET
