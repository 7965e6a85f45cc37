package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
)

type topSample struct {
	Name         string            `json:"name"`
	State        string            `json:"state"`
	Instructions uint64            `json:"instructions"`
	Exits        map[string]uint64 `json:"exits"`
	Hypercalls   map[string]uint64 `json:"hypercalls"`
	Priv         uint64            `json:"privileged_after_start"`
	Refused      uint64            `json:"refused_hypercalls"`
	CPU          float64           `json:"cpu_s"`
	MemReserved  uint64            `json:"mem_reserved"`
}

// statsReport parses pvisor stats (pvisor run --stats's report) into the
// counters a sample has.
func statsReport(t *testing.T, text string) topSample {
	t.Helper()
	s := topSample{Exits: map[string]uint64{}, Hypercalls: map[string]uint64{}}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		num := func(i int) uint64 {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				t.Fatalf("stats line %q: %v", l, err)
			}
			return n
		}
		switch {
		case len(f) == 2 && f[0] == "instructions:":
			s.Instructions = num(1)
		case len(f) == 3 && f[0] == "exits":
			s.Exits[strings.TrimSuffix(f[1], ":")] = num(2)
		case len(f) == 3 && f[0] == "hypercall":
			s.Hypercalls[strings.TrimSuffix(f[1], ":")] = num(2)
		case strings.HasPrefix(l, "privileged exits after pv start:"):
			s.Priv = num(len(f) - 1)
		}
	}
	return s
}

// TestTopAndMetrics: for a pv and a trap VM of pvisor serve, paused so
// that nothing moves, `pvisor top --once --json`, the Prometheus endpoint
// and `pvisor stats` (pvisor run --stats's report) give the same
// instructions, exits by reason, hypercalls by name and violations; while
// they run, a later report never has less than an earlier sample; and
// pvisor top's screen has a row per VM.
func TestTopAndMetrics(t *testing.T) {
	state := t.TempDir()
	metrics := filepath.Join(state, "metrics.sock")
	d := &daemonEnv{t: t, state: state, sock: filepath.Join(state, "api.sock")}
	d.srv = startPvisor(t, "serve", "--state-dir", state, "--metrics", "unix:"+metrics)
	if !waitFor(time.Minute, func() bool { _, err := os.Stat(metrics); return err == nil }) {
		t.Fatalf("no metrics socket; stderr:\n%s", d.srv.errs.String())
	}
	tg := testguest(t)
	for _, mode := range []string{"pv", "trap"} {
		d.must("create", "top-"+mode, "--kernel", tg, "--mode", mode, "--mem", "64M", "--cmdline", "count=1000000")
		d.must("start", "top-"+mode)
	}
	time.Sleep(2 * time.Second)
	scrape := func() map[string]*dto.MetricFamily {
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return net.Dial("unix", metrics)
		}}}
		resp, err := c.Get("http://pvisor/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		return fams
	}
	metric := func(fams map[string]*dto.MetricFamily, name, vm string, labels ...string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.Metric {
			got := map[string]string{}
			for _, l := range m.Label {
				got[l.GetName()] = l.GetValue()
			}
			if got["vm"] != vm {
				continue
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue(), true
			}
			return m.Gauge.GetValue(), true
		}
		return 0, false
	}
	top := func() map[string]topSample {
		out := d.must("top", "--once", "--json")
		var ss []topSample
		if err := json.Unmarshal([]byte(out), &ss); err != nil {
			t.Fatalf("top --once --json: %v\n%s", err, out)
		}
		m := map[string]topSample{}
		for _, s := range ss {
			m[s.Name] = s
		}
		return m
	}

	// Running: a later report is never behind an earlier sample.
	early := top()
	for _, mode := range []string{"pv", "trap"} {
		name := "top-" + mode
		later := statsReport(t, d.must("stats", name))
		e := early[name]
		if e.State != "running" || e.Instructions == 0 || later.Instructions < e.Instructions {
			t.Errorf("%s: top said %+v, then stats %d instructions", name, e, later.Instructions)
		}
		for k, v := range e.Hypercalls {
			if later.Hypercalls[k] < v {
				t.Errorf("%s: hypercall %s went from %d to %d", name, k, v, later.Hypercalls[k])
			}
		}
	}

	// Paused: all three agree exactly.
	for _, mode := range []string{"pv", "trap"} {
		d.must("pause", "top-"+mode)
	}
	samples, fams := top(), scrape()
	for _, mode := range []string{"pv", "trap"} {
		name := "top-" + mode
		rep := statsReport(t, d.must("stats", name))
		s := samples[name]
		if s.State != "paused" {
			t.Errorf("%s: state %q", name, s.State)
		}
		if s.Instructions != rep.Instructions || s.Priv != rep.Priv {
			t.Errorf("%s: top %d instructions, %d privileged; stats %d, %d", name, s.Instructions, s.Priv, rep.Instructions, rep.Priv)
		}
		if fmt.Sprint(s.Exits) != fmt.Sprint(rep.Exits) || fmt.Sprint(s.Hypercalls) != fmt.Sprint(rep.Hypercalls) {
			t.Errorf("%s: top exits %v hypercalls %v; stats exits %v hypercalls %v", name, s.Exits, s.Hypercalls, rep.Exits, rep.Hypercalls)
		}
		// The count guest writes its console with hypercalls in both modes;
		// in trap mode its CLI and HLT-free blocking still trap as
		// privileged instructions.
		if rep.Hypercalls["console_write"] == 0 || rep.Exits["hypercall"] == 0 || mode == "trap" && rep.Exits["privileged"] == 0 {
			t.Errorf("%s: an implausible report: %+v", name, rep)
		}
		if v, ok := metric(fams, "pvisor_vm_instructions_total", name); !ok || uint64(v) != rep.Instructions {
			t.Errorf("%s: metrics say %v instructions (found %v), stats %d", name, v, ok, rep.Instructions)
		}
		for r, n := range rep.Exits {
			if v, ok := metric(fams, "pvisor_vm_exits_total", name, "reason", r); !ok || uint64(v) != n {
				t.Errorf("%s: metrics say %v %s exits, stats %d", name, v, r, n)
			}
		}
		for c, n := range rep.Hypercalls {
			if v, ok := metric(fams, "pvisor_vm_hypercalls_total", name, "call", c); !ok || uint64(v) != n {
				t.Errorf("%s: metrics say %v %s hypercalls, stats %d", name, v, c, n)
			}
		}
		if v, ok := metric(fams, "pvisor_vm_paused", name); !ok || v != 1 {
			t.Errorf("%s: pvisor_vm_paused %v %v", name, v, ok)
		}
	}

	// A pv guest doing port I/O and MSR accesses after its PV start-up:
	// violations, in top and as events.
	d.must("create", "top-viol", "--kernel", tg, "--mem", "64M", "--cmdline", "spin=io,msr")
	d.must("start", "top-viol")
	if !waitFor(time.Minute, func() bool { return strings.Contains(d.must("events", "top-viol"), `"violation"`) }) {
		t.Errorf("no violation event for a pv guest making privileged exits:\n%s", d.must("events", "top-viol"))
	}
	if s := top()["top-viol"]; s.Priv == 0 {
		t.Errorf("top shows no privileged exits for top-viol: %+v", s)
	}
	for _, mode := range []string{"pv", "trap"} {
		if ev := d.must("events", "top-"+mode); strings.Contains(ev, `"violation"`) {
			t.Errorf("top-%s (no violations) has a violation event:\n%s", mode, ev)
		}
	}
	d.must("stop", "top-viol")

	// The live view: a row per VM, with its state.
	screen := d.must("top", "-n", "1", "--interval", "200ms")
	for _, mode := range []string{"pv", "trap"} {
		if !regexp.MustCompile(`(?m)^top-` + mode + `\s+paused\s`).MatchString(screen) {
			t.Errorf("pvisor top's screen lacks top-%s:\n%s", mode, screen)
		}
	}
}

// TestRefusedHypercalls: the test guest's ABI checks make calls the
// hypervisor refuses (unknown numbers, -ENOSYS); the VM counts them, so
// pvisor top and the metrics can show them as violations.
func TestRefusedHypercalls(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	vm, err := hv.New(hv.Config{Kernel: kernel, Mode: cpu.ModePV, MemBytes: 64 << 20, Budget: mm.NewBudget(1 << 30), Console: &out})
	if err != nil {
		t.Fatal(err)
	}
	vm.Run()
	enosys := strings.Count(out.String(), "-> -ENOSYS")
	if enosys < 4 || vm.RefusedHypercalls() < uint64(enosys) {
		t.Errorf("%d checks expecting -ENOSYS, %d hypercalls counted refused", enosys, vm.RefusedHypercalls())
	}
}
