package main

import (
	"strings"
	"testing"
)

func TestParsers(t *testing.T) {
	qlog := `Trace 0: 0x7f
RAX=0000000000000001 RBX=0000000000000002 RCX=0000000000000003 RDX=0000000000000004
RSI=0000000000000005 RDI=0000000000000006 RBP=0000000000000007 RSP=0000000000000008
R8 =0000000000000009 R9 =000000000000000a R10=000000000000000b R11=000000000000000c
R12=000000000000000d R13=000000000000000e R14=000000000000000f R15=0000000000000010
RIP=0000000001000000 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0018 0000000000000000 ffffffff 00c09300 DPL=0 DS   [-WA]
`
	qs := make(chan state, 4)
	// A repeated RIP (a REP iteration) is one state; a new RIP is another.
	qlog2 := strings.Replace(qlog, "RIP=0000000001000000", "RIP=0000000001000003", 1)
	qemuStates(strings.NewReader(qlog+qlog+qlog2), qs)
	var got []state
	for s := range qs {
		got = append(got, s)
	}
	if len(got) != 2 || got[1].rip != 0x1000003 || got[0].rip != 0x1000000 || got[0].rfl != 0x46 || got[0].gpr[8] != 9 || got[0].gpr[15] != 0x10 {
		t.Fatalf("qemu states: %+v", got)
	}
	line := "RIP=0000000001000000 RAX=0000000000000001 RBX=0000000000000002 RCX=0000000000000003 RDX=0000000000000004 RSI=0000000000000005 RDI=0000000000000006 RBP=0000000000000007 RSP=0000000000000008 R8=0000000000000009 R9=000000000000000a R10=000000000000000b R11=000000000000000c R12=000000000000000d R13=000000000000000e R14=000000000000000f R15=0000000000000010 RFL=00000046 CPL=0\n"
	ps := make(chan state, 4)
	pvisorStates(strings.NewReader(line), ps)
	p := <-ps
	if p.rip != got[0].rip || p.gpr != got[0].gpr || p.rfl != got[0].rfl {
		t.Fatalf("pvisor state %+v differs from QEMU's %+v", p, got[0])
	}
}
