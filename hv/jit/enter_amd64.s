#include "textflag.h"

// func Enter(code uintptr, ctx unsafe.Pointer) uint64
//
// Calls code with ctx in DI; code returns its exit code in AX. The frame is
// empty: translated code uses no stack beyond the return address CALL
// pushes, which a NOSPLIT function's guard area covers.
TEXT ·Enter(SB), NOSPLIT, $0-24
	MOVQ code+0(FP), AX
	MOVQ ctx+8(FP), DI
	CALL AX
	MOVQ AX, ret+16(FP)
	RET
