package tests

import (
	"os/exec"
	"path/filepath"
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
	bin := filepath.Join(t.TempDir(), "pvisor")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/pvisor").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "bench", "linux", "--modes", "pv,hwassist", "console", "syscall")
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
