package tests

import (
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// TestBenchLinux runs `pvisor bench linux` on two of its benchmarks in pv
// and hwassist mode and checks the table: every row is there, and the
// counts show what paravirtualization changes (a console line is a few
// hypercalls in pv and one port write per byte in hwassist). Times are
// reported by the command, not asserted.
func TestBenchLinux(t *testing.T) {
	linuxGuest(t)
	pvGuest(t)
	cmd := exec.Command(pvisorBin(t), "bench", "linux", "--modes", "pv,hwassist", "console", "syscall")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pvisor bench linux: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	row := regexp.MustCompile(`(?m)^(\w+)\s+(pv|hwassist)\s+[\d.]+ (?:s|ms|µs|ns)\s+\S+\s+([\d.]+)\s+([\d.]+)\s`)
	got := map[string][2]float64{}
	for _, m := range row.FindAllStringSubmatch(string(out), -1) {
		exits, _ := strconv.ParseFloat(m[3], 64)
		hcalls, _ := strconv.ParseFloat(m[4], 64)
		got[m[1]+"/"+m[2]] = [2]float64{exits, hcalls}
	}
	for _, k := range []string{"boot/pv", "boot/hwassist", "console/pv", "console/hwassist", "syscall/pv", "syscall/hwassist"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %s row", k)
		}
	}
	if pv, hw := got["console/pv"], got["console/hwassist"]; pv[1] < 1 || pv[0] > 10 || hw[0] < 64 || hw[1] != 0 {
		t.Errorf("console line: pv %v exits/hypercalls, hwassist %v: want a few hypercalls in pv and >= 64 exits in hwassist", pv, hw)
	}
	if pv, hw := got["boot/pv"], got["boot/hwassist"]; pv[0]*10 > hw[0] {
		t.Errorf("boot exits: pv %v, hwassist %v: want pv at least 10x fewer", pv[0], hw[0])
	}
}

// TestBenchIO runs `pvisor bench io` on 4 KiB random reads in pv and
// hwassist mode and checks what the transports promise: the same backend
// serves both, and pv's hypercall transport (one notification hypercall,
// interrupts as event channels) makes at least 2x fewer exits per read
// than virtio-mmio (the notify write, the interrupt status read and ack,
// the PIC's EOI). Rates are reported, not asserted.
func TestBenchIO(t *testing.T) {
	linuxGuest(t)
	pvGuest(t)
	cmd := exec.Command(pvisorBin(t), "bench", "io", "--qemu=false", "--modes", "pv,hwassist", "blk-randread")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pvisor bench io: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	row := regexp.MustCompile(`(?m)^blk-randread\s+(pv|hwassist)\s+(\d+) IOPS\s+\S+ \S+\s+\S+\s+\S+ \S+\s+([\d.]+)\s+([\d.]+)\s`)
	exits := map[string]float64{}
	hcalls := map[string]float64{}
	for _, m := range row.FindAllStringSubmatch(string(out), -1) {
		exits[m[1]], _ = strconv.ParseFloat(m[3], 64)
		hcalls[m[1]], _ = strconv.ParseFloat(m[4], 64)
	}
	pv, okPV := exits["pv"]
	hw, okHW := exits["hwassist"]
	if !okPV || !okHW {
		t.Fatalf("no blk-randread rows for pv and hwassist in:\n%s", out)
	}
	if pv <= 0 || hcalls["pv"] <= 0 || hcalls["hwassist"] != 0 {
		t.Errorf("pv: %v exits, %v hypercalls per read; hwassist %v hypercalls: want pv's exits to be hypercalls and hwassist's none", pv, hcalls["pv"], hcalls["hwassist"])
	}
	if pv*2 > hw {
		t.Errorf("4 KiB random read: pv %.2f exits per operation, hwassist %.2f: want pv at least 2x fewer", pv, hw)
	}
}

// TestBenchSnapshot runs `pvisor bench snapshot` for one round and checks
// that both forms are in its table with a size near the guest's 64 MiB of
// non-zero memory. Times are reported, not asserted.
func TestBenchSnapshot(t *testing.T) {
	pvGuest(t)
	cmd := exec.Command(pvisorBin(t), "bench", "snapshot", "--rounds", "1")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pvisor bench snapshot: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	row := regexp.MustCompile(`(?m)^(plain|encrypted)\s+\S+\s+\S+\s+([\d.]+) MiB$`)
	got := map[string]float64{}
	for _, m := range row.FindAllStringSubmatch(string(out), -1) {
		got[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	for _, f := range []string{"plain", "encrypted"} {
		if mib, ok := got[f]; !ok || mib < 40 || mib > 128 {
			t.Errorf("%s: size %v MiB (found %v), want the ~64 MiB the guest wrote", f, mib, ok)
		}
	}
}
