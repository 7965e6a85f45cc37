package tests

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
)

var summaryRE = regexp.MustCompile(`(?m)^testguest: (\d+) ok, (\d+) failed$`)

// runGuest boots a freestanding guest and returns its console and status;
// it fails the test if the VM has not stopped by the deadline.
func runGuest(t *testing.T, kernel []byte, mode cpu.Mode, cmdline string, deadline time.Duration) (string, hv.ExitStatus) {
	t.Helper()
	var out bytes.Buffer
	vm, err := hv.New(hv.Config{Kernel: kernel, Cmdline: cmdline, MemBytes: 64 << 20, Mode: mode,
		Budget: mm.NewBudget(1 << 30), Console: &out})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan hv.ExitStatus, 1)
	go func() { done <- vm.Run() }()
	select {
	case st := <-done:
		return out.String(), st
	case <-time.After(deadline):
		vm.Stop(124, "test deadline")
		<-done
		t.Fatalf("%v: VM still running after %v; console:\n%s", mode, deadline, out.String())
		return "", hv.ExitStatus{}
	}
}

// TestTestguest is issue 3's acceptance: the test guest passes every check
// (at least 60) and powers off with status 0.
func TestTestguest(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		out, st := runGuest(t, kernel, mode, "", 2*time.Minute)
		m := summaryRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%v: no summary line; status %+v; console:\n%s", mode, st, out)
		}
		ok, _ := strconv.Atoi(m[1])
		if m[2] != "0" || ok < 60 || st.Code != 0 {
			t.Errorf("%v: %s (status %+v); failures:\n%s", mode, m[0], st, notOK(out))
		}
	}
}

func notOK(out string) string {
	var b bytes.Buffer
	for _, l := range regexp.MustCompile(`(?m)^not ok .*$`).FindAllString(out, -1) {
		b.WriteString(l + "\n")
	}
	return b.String()
}
