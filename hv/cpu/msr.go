package cpu

// The MSR model of a pvisor vCPU: which MSRs exist and which values each
// accepts. Engines (for RDMSR/WRMSR they execute), the trap-mode emulator
// and the msr hypercalls all go through ReadMSR and WriteMSR, so the set of
// MSRs and their rules are one list.

// MSRState is the state the MSR model covers: the MSRs of MSRs plus those
// an engine keeps elsewhere (EFER, the FS and GS bases, the TSC).
type MSRState struct {
	EFER           uint64
	FSBase, GSBase uint64
	TSC            uint64 // the current TSC value
	MSRs
}

// MSRWriteResult is the outcome of WriteMSR.
type MSRWriteResult uint8

const (
	MSRWritten MSRWriteResult = iota // the state was updated
	MSRUnknown                       // no such MSR: #GP(0) where the engine decides
	MSRRefused                       // the value is not allowed: #GP(0)
)

// EFERWritable are the EFER bits a guest may write: SCE, LME, NXE (LMA is
// read-only and keeps its value).
const EFERWritable = EFERSCE | EFERLME | EFERLMA | EFERNXE

// ReadMSR returns the value of MSR idx, or false if there is no such MSR.
func ReadMSR(s *MSRState, idx uint32) (uint64, bool) {
	switch idx {
	case MSREFER:
		return s.EFER, true
	case MSRSTAR:
		return s.STAR, true
	case MSRLSTAR:
		return s.LSTAR, true
	case MSRCSTAR:
		return s.CSTAR, true
	case MSRSFMASK:
		return s.SFMASK, true
	case MSRFSBase:
		return s.FSBase, true
	case MSRGSBase:
		return s.GSBase, true
	case MSRKernelGSBase:
		return s.KernelGSBase, true
	case MSRTSC:
		return s.TSC, true
	case MSRPAT:
		return s.PAT, true
	case MSRSysenterCS:
		return s.SysenterCS, true
	case MSRSysenterESP:
		return s.SysenterESP, true
	case MSRSysenterEIP:
		return s.SysenterEIP, true
	case MSRTSCAux:
		return s.TSCAux, true
	}
	return 0, false
}

// validPAT reports whether every entry of a PAT value is a defined memory
// type (UC, WC, WT, WP, WB, UC-).
func validPAT(v uint64) bool {
	for i := 0; i < 8; i++ {
		switch (v >> (8 * i)) & 0xff {
		case 0, 1, 4, 5, 6, 7:
		default:
			return false
		}
	}
	return true
}

// WriteMSR writes v to MSR idx in s. The vCPU runs in long mode with paging
// on, so clearing EFER.LME is refused (#GP, as changing LME with CR0.PG set
// is). A write of MSRTSC sets s.TSC; the engine turns it into its offset.
func WriteMSR(s *MSRState, idx uint32, v uint64) MSRWriteResult {
	canon := func(p *uint64) MSRWriteResult {
		if !Canonical(v) {
			return MSRRefused
		}
		*p = v
		return MSRWritten
	}
	switch idx {
	case MSREFER:
		if v&^EFERWritable != 0 || v&EFERLME == 0 {
			return MSRRefused
		}
		s.EFER = v&^EFERLMA | s.EFER&EFERLMA
	case MSRSTAR:
		s.STAR = v
	case MSRLSTAR:
		return canon(&s.LSTAR)
	case MSRCSTAR:
		return canon(&s.CSTAR)
	case MSRSFMASK:
		s.SFMASK = v & 0xffffffff
	case MSRFSBase:
		return canon(&s.FSBase)
	case MSRGSBase:
		return canon(&s.GSBase)
	case MSRKernelGSBase:
		return canon(&s.KernelGSBase)
	case MSRTSC:
		s.TSC = v
	case MSRPAT:
		if !validPAT(v) {
			return MSRRefused
		}
		s.PAT = v
	case MSRSysenterCS:
		s.SysenterCS = v
	case MSRSysenterESP:
		return canon(&s.SysenterESP)
	case MSRSysenterEIP:
		return canon(&s.SysenterEIP)
	case MSRTSCAux:
		s.TSCAux = v & 0xffffffff
	default:
		return MSRUnknown
	}
	return MSRWritten
}
