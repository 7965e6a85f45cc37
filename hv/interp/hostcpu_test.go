package interp

// The tests use the host CPU as their oracle. Where the Intel SDM and the
// AMD APM leave a result to the implementation, the engine implements one
// behaviour whatever the host (the one the tests were tuned on, an AMD
// EPYC), and the tests accept on each host exactly the variant its vendor
// documents or shows. docs/engine.md ("Host differences") lists them.

// hostVariant is what the tests know of the host CPU.
type hostVariant struct {
	vendor string // CPUID.0 vendor string
	// CPUID.(EAX=7,ECX=0):EBX[6]: the x87 FDP is updated only for
	// non-control instructions that raise an unmasked exception.
	// (EBX[13], FCS and FDS deprecated, needs nothing: no test compares
	// FCS or FDS on any host.)
	fdpExcptnOnly bool
}

func (h hostVariant) amd() bool   { return h.vendor == "AuthenticAMD" }
func (h hostVariant) intel() bool { return h.vendor == "GenuineIntel" }

// repA32ZeroCountZext reports whether a REP string instruction with a
// 32-bit address size and ECX = 0 may zero-extend RCX, RSI and RDI from
// bit 31 on the host although it runs no iteration. Intel processors do
// (the Xeon measured clears RCX always, and RSI/RDI where MOVS and STOS
// address through them); AMD processors, and the engine, leave them.
// Neither manual's pseudocode writes a register when the count is 0.
func (h hostVariant) repA32ZeroCountZext() bool { return h.intel() }

// fdpOnlyOnException reports whether the host's stored x87 FDP keeps its
// FNINIT value (0) unless an instruction raised an unmasked exception:
// Intel processors that enumerate CPUID.(EAX=7):EBX[6]. The engine records
// the last memory operand, as AMD processors do.
func (h hostVariant) fdpOnlyOnException() bool { return h.intel() && h.fdpExcptnOnly }

// fscaleZeroKeepsTiny reports whether FSCALE by a zero ST(1) returns a
// denormal ST(0) unchanged, with DE only, when UE is unmasked (the SDM's
// FSCALE table: "ST(0)"). AMD processors and the engine deliver the
// unmasked underflow response: ST(0) normalized with its exponent wrapped
// by 24576, UE.
func (h hostVariant) fscaleZeroKeepsTiny() bool { return h.intel() }

// transMeasured reports whether the host's transcendentals are those
// transTol characterises (AMD's: correctly rounded but within a small
// distance of a rounding boundary, bit-exact elsewhere). On any other host
// they are held to the accuracy the Intel SDM promises (8.3.10): an error
// below 1 ulp when rounding to nearest and 1.5 ulp in the other modes, for
// FSIN, FCOS, FSINCOS and FPTAN with the argument reduced by the 66-bit P.
func (h hostVariant) transMeasured() bool { return h.amd() }
