package hypercall

import (
	"strings"
	"testing"
)

func TestTableValid(t *testing.T) {
	if err := Validate(Table); err != nil {
		t.Fatal(err)
	}
}

// The validator must reject what it claims to: each broken table fails.
func TestValidateRejects(t *testing.T) {
	clone := func() []Call { return append([]Call(nil), Table...) }
	cases := map[string]func([]Call) []Call{
		"renumbered": func(t []Call) []Call { t[3].Nr = 9; return t },
		"duplicate":  func(t []Call) []Call { t[4].Name = t[3].Name; return t },
		"undocumented": func(t []Call) []Call {
			t[3].Doc = ""
			return t
		},
		"arg order": func(t []Call) []Call {
			c := t[3]
			c.Args = []Arg{c.Args[1], c.Args[0]}
			t[3] = c
			return t
		},
		"arg doc": func(t []Call) []Call {
			c := t[3]
			c.Args = append([]Arg(nil), c.Args...)
			c.Args[0].Doc = ""
			t[3] = c
			return t
		},
		"error condition": func(t []Call) []Call {
			c := t[3]
			c.Errors = []Err{{EFAULT, ""}}
			t[3] = c
			return t
		},
		"future version": func(t []Call) []Call { t[3].Since = Version + 1; return t },
	}
	for name, mutate := range cases {
		if err := Validate(mutate(clone())); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestGoName(t *testing.T) {
	for in, want := range map[string]string{"msr_read": "MSRRead", "mmu_set_cr3": "MMUSetCR3", "evtchn_bind_virq": "EvtchnBindVIRQ", "version": "Version"} {
		if got := GoName(in); got != want {
			t.Errorf("GoName(%q) = %q, want %q", in, got, want)
		}
	}
	if !strings.HasPrefix(Table[0].CName(), "PVISOR_HC_") {
		t.Error(Table[0].CName())
	}
}
