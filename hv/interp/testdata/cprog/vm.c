/* A small stack-machine interpreter: a dense switch that gcc compiles to a
 * jump table. The Go test runs the same programs on its own copy of the
 * machine. Bytecode: one opcode byte, then operands (little endian). */
#include "prog.h"

enum {
	OP_HALT, OP_PUSH, OP_ADD, OP_SUB, OP_MUL, OP_XOR, OP_AND, OP_OR,
	OP_SHL, OP_SHR, OP_SAR, OP_DUP, OP_SWAP, OP_DROP, OP_OVER, OP_JMP,
	OP_JZ, OP_JNZ, OP_LOAD, OP_STORE, OP_LT, OP_LTU, OP_EQ, OP_NEG,
	OP_DIVU, OP_REMS, OP_INC, OP_DEC, OP_ROT, OP_MIN, OP_NOT, OP_CALLH,
};

static i64 hashmix(i64 x)
{
	u64 v = (u64)x;
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdul;
	v ^= v >> 33;
	return (i64)v;
}

i64 vm_run(const u8 *code, i64 *locals)
{
	i64 st[256];
	int sp = 0;
	const u8 *pc = code;
	for (;;) {
		u8 op = *pc++;
		i64 a, b;
		switch (op) {
		case OP_HALT:
			return sp ? st[sp - 1] : 0;
		case OP_PUSH:
			a = (i32)((u32)pc[0] | (u32)pc[1] << 8 | (u32)pc[2] << 16 | (u32)pc[3] << 24);
			pc += 4;
			st[sp++] = a;
			break;
		case OP_ADD:
			sp--;
			st[sp - 1] = (i64)((u64)st[sp - 1] + (u64)st[sp]);
			break;
		case OP_SUB:
			sp--;
			st[sp - 1] = (i64)((u64)st[sp - 1] - (u64)st[sp]);
			break;
		case OP_MUL:
			sp--;
			st[sp - 1] = (i64)((u64)st[sp - 1] * (u64)st[sp]);
			break;
		case OP_XOR:
			sp--;
			st[sp - 1] ^= st[sp];
			break;
		case OP_AND:
			sp--;
			st[sp - 1] &= st[sp];
			break;
		case OP_OR:
			sp--;
			st[sp - 1] |= st[sp];
			break;
		case OP_SHL:
			sp--;
			st[sp - 1] = (i64)((u64)st[sp - 1] << (st[sp] & 63));
			break;
		case OP_SHR:
			sp--;
			st[sp - 1] = (i64)((u64)st[sp - 1] >> (st[sp] & 63));
			break;
		case OP_SAR:
			sp--;
			st[sp - 1] = st[sp - 1] >> (st[sp] & 63);
			break;
		case OP_DUP:
			st[sp] = st[sp - 1];
			sp++;
			break;
		case OP_SWAP:
			a = st[sp - 1];
			st[sp - 1] = st[sp - 2];
			st[sp - 2] = a;
			break;
		case OP_DROP:
			sp--;
			break;
		case OP_OVER:
			st[sp] = st[sp - 2];
			sp++;
			break;
		case OP_JMP:
			pc += (short)((u16)pc[0] | (u16)pc[1] << 8) + 2;
			break;
		case OP_JZ:
		case OP_JNZ:
			a = st[--sp];
			if ((a == 0) == (op == OP_JZ))
				pc += (short)((u16)pc[0] | (u16)pc[1] << 8);
			pc += 2;
			break;
		case OP_LOAD:
			st[sp++] = locals[*pc++];
			break;
		case OP_STORE:
			locals[*pc++] = st[--sp];
			break;
		case OP_LT:
			sp--;
			st[sp - 1] = st[sp - 1] < st[sp];
			break;
		case OP_LTU:
			sp--;
			st[sp - 1] = (u64)st[sp - 1] < (u64)st[sp];
			break;
		case OP_EQ:
			sp--;
			st[sp - 1] = st[sp - 1] == st[sp];
			break;
		case OP_NEG:
			st[sp - 1] = (i64)-(u64)st[sp - 1];
			break;
		case OP_DIVU:
			sp--;
			b = st[sp];
			st[sp - 1] = b ? (i64)((u64)st[sp - 1] / (u64)b) : 0;
			break;
		case OP_REMS:
			sp--;
			b = st[sp];
			a = st[sp - 1];
			st[sp - 1] = (b == 0 || (b == -1)) ? 0 : a % b;
			break;
		case OP_INC:
			st[sp - 1]++;
			break;
		case OP_DEC:
			st[sp - 1]--;
			break;
		case OP_ROT:
			a = st[sp - 3];
			st[sp - 3] = st[sp - 2];
			st[sp - 2] = st[sp - 1];
			st[sp - 1] = a;
			break;
		case OP_MIN:
			sp--;
			if (st[sp] < st[sp - 1])
				st[sp - 1] = st[sp];
			break;
		case OP_NOT:
			st[sp - 1] = ~st[sp - 1];
			break;
		case OP_CALLH:
			st[sp - 1] = hashmix(st[sp - 1]);
			break;
		default:
			return -1;
		}
	}
}
