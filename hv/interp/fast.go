package interp

//go:generate go run ./internal/genfast -o fast_gen.go

// Decode-time specialization: after decoding, an instruction whose generic
// op has a size- and operand-specific twin (fast_gen.go) is given the twin.
// The generic handlers remain the reference implementation; the twins are
// checked against them in TestFastMatchesGeneric.

type fastKind uint8

const (
	fastRR fastKind = iota // register r/m operand
	fastMR                 // memory r/m operand
)

type fastForm struct {
	generic string // name of the generic op (defOp name)
	size    uint8
	kind    fastKind
	name    string
	h       handler
}

// fastTab[generic op][size index][kind] is the specialized op, 0 for none.
// Size index: 0 for 8 bytes, 1 for 4 bytes.
var fastTab [maxOps][2][2]uint16

// fastGeneric maps a specialized op back to its generic op (for tests).
var fastGeneric [maxOps]uint16

func init() {
	byName := map[string]uint16{}
	for i := 1; i < nOps; i++ {
		byName[opNames[i]] = uint16(i)
	}
	for _, f := range fastForms {
		g, ok := byName[f.generic]
		if !ok {
			panic("interp: fast form for unknown op " + f.generic)
		}
		si := 0
		if f.size == 4 {
			si = 1
		}
		op := defOp("fast "+f.name, opEnds[g], f.h)
		fastTab[g][si][f.kind] = op
		fastGeneric[op] = g
	}
}

// specialize returns the op to cache for a decoded instruction.
func specialize(in *Inst) uint16 {
	if in.op == jccGeneric && jccGeneric != 0 {
		return jccOps[in.ext&0xf]
	}
	if in.op == leaGeneric && in.flags&iAddr32 != 0 {
		return in.op
	}
	var si int
	switch in.size {
	case 8:
		si = 0
	case 4:
		si = 1
	default:
		return in.op
	}
	k := fastRR
	if in.flags&iMem != 0 {
		k = fastMR
	}
	if f := fastTab[in.op][si][k]; f != 0 {
		return f
	}
	return in.op
}
