package tests

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv"
)

// TestLaunchPolicy: `pvisor measure` writes the digests a boot measures;
// `pvisor run --expect-measurements FILE` boots the VM they describe and
// refuses, naming what differs, one whose kernel (one byte changed),
// command line or initramfs differs; a malformed file is refused with a
// clear error before anything boots.
func TestLaunchPolicy(t *testing.T) {
	tg := testguest(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	expect := filepath.Join(dir, "expected.json")
	run := func(args ...string) (string, int) {
		t.Helper()
		b, err := exec.Command(pvisorBin(t), args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(b), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(b), 0
	}
	if out, code := run("measure", "--kernel", tg, "--cmdline", "count=5", "-o", expect); code != 0 {
		t.Fatalf("pvisor measure: exit %d: %s", code, out)
	}
	// The file holds hv.Measure's digests: the guest's measured_boot.
	kernel, err := os.ReadFile(tg)
	if err != nil {
		t.Fatal(err)
	}
	m := hv.Measure(kernel, nil, "count=5")
	var f map[string]any
	b, _ := os.ReadFile(expect)
	if err := json.Unmarshal(b, &f); err != nil || f["kernel"] != hex.EncodeToString(m.Kernel[:]) || f["cmdline"] != hex.EncodeToString(m.Cmdline[:]) || f["initrd"] != "" {
		t.Fatalf("pvisor measure wrote %s (%v)", b, err)
	}
	boot := func(kernel, cmdline string, extra ...string) (string, int) {
		return run(append([]string{"run", "--state-dir", state, "--kernel", kernel, "--mem", "64M", "--cmdline", cmdline, "--expect-measurements", expect}, extra...)...)
	}
	if out, code := boot(tg, "count=5"); code != 0 || !strings.Contains(out, "count: done") {
		t.Fatalf("the expected VM: exit %d:\n%s", code, tail(out, 1000))
	}
	bad := filepath.Join(dir, "kernel-1byte")
	k2 := append([]byte(nil), kernel...)
	k2[len(k2)/2] ^= 1
	if err := os.WriteFile(bad, k2, 0o600); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd")
	os.WriteFile(initrd, []byte("an initramfs"), 0o600)
	for _, c := range []struct {
		name, kernel, cmdline string
		extra                 []string
		want                  string
	}{
		{"a kernel with one byte changed", bad, "count=5", nil, "the kernel measures"},
		{"another command line", tg, "count=6", nil, "the command line measures"},
		{"an initramfs the file expects none of", tg, "count=5", []string{"--initrd", initrd}, "the initramfs measures"},
	} {
		out, code := boot(c.kernel, c.cmdline, c.extra...)
		if code != 2 || !strings.Contains(out, "refused by the launch policy") || !strings.Contains(out, c.want) || strings.Contains(out, "count: ") {
			t.Errorf("%s: exit %d, want a refusal naming %q and no boot:\n%s", c.name, code, c.want, tail(out, 1000))
		}
	}
	// The daemon holds its definitions to the same policy.
	d := startDaemon(t, filepath.Join(dir, "daemon"))
	d.must("create", "lp-ok", "--kernel", tg, "--mem", "64M", "--cmdline", "count=5", "--expect-measurements", expect)
	d.must("create", "lp-bad", "--kernel", tg, "--mem", "64M", "--cmdline", "count=7", "--expect-measurements", expect)
	d.must("start", "lp-ok")
	if out, code := d.cli("", "start", "lp-bad"); code == 0 || !strings.Contains(out, "refused by the launch policy") || !strings.Contains(out, "the command line measures") {
		t.Errorf("the daemon started a VM its launch policy refuses: exit %d: %s", code, out)
	}
	if s := d.vmState("lp-bad"); s != "stopped" {
		t.Errorf("lp-bad is %s after the refusal", s)
	}
	if out, code := d.cli("", "create", "lp-x", "--kernel", tg, "--expect-measurements", filepath.Join(dir, "nonexistent.json")); code == 0 {
		t.Errorf("a definition with a missing policy file was accepted: %s", out)
	}

	for name, body := range map[string]string{
		"not JSON":      "{",
		"version 2":     `{"version":2,"algo":"sha256","kernel":"` + strings.Repeat("0", 64) + `","initrd":"","cmdline":"` + strings.Repeat("0", 64) + `"}`,
		"short digest":  `{"version":1,"algo":"sha256","kernel":"abcd","initrd":"","cmdline":"` + strings.Repeat("0", 64) + `"}`,
		"unknown field": `{"version":1,"algo":"sha256","kernel":"` + strings.Repeat("0", 64) + `","initrd":"","cmdline":"` + strings.Repeat("0", 64) + `","x":1}`,
		"too large":     strings.Repeat(" ", 70000),
	} {
		p := filepath.Join(dir, "bad.json")
		os.WriteFile(p, []byte(body), 0o600)
		out, code := run("run", "--state-dir", state, "--kernel", tg, "--mem", "64M", "--cmdline", "count=5", "--expect-measurements", p)
		if code != 2 || !strings.Contains(out, "--expect-measurements") || strings.Contains(out, "count: ") {
			t.Errorf("%s: exit %d, want a clear refusal before any boot:\n%s", name, code, tail(out, 500))
		}
	}
}
