package tests

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRollbackGuard: a running test guest's VM gets patch level 5 from the
// operator (pvisor ctl patch-level) and is snapshotted (s5), then level 7
// and snapshotted again (s7). With the lineage's highest level at 7:
//   - restoring s5 is refused, naming both levels, and runs nothing;
//   - s7 restores, flagged restored but not rolled back;
//   - s5 with --allow-rollback restores, flagged rolled back in ctl list
//     and in the guest (vm_lineage's LINEAGE_ROLLED_BACK);
//   - once s7 is marked compromised (pvisor snapshot mark), restoring it is
//     refused, with --allow-rollback too;
//   - the lineage's event log has every one of these, in order.
//
// In pv mode, and in trap mode (the guard is the same; the guest's view
// comes through the same hypercall).
func TestRollbackGuard(t *testing.T) {
	for _, mode := range []string{"pv", "trap"} {
		t.Run(mode, func(t *testing.T) { testRollbackGuard(t, mode) })
	}
	t.Run("linux", testRollbackGuardLinux)
}

// testRollbackGuardLinux: the patched PV kernel declares its level from
// pvisor.patch_level=7 (ctl list shows it with the kernel's release); the
// operator raises the lineage to 9; the snapshot at 7 is refused, then
// restored with --allow-rollback, and the guest itself reads
// /sys/hypervisor/pvisor/rolled_back = 1, level 7, highest 9.
func testRollbackGuardLinux(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	sock := filepath.Join(dir, "ctl.sock")
	loop := `i=0; while true; do echo "lin $i $(cat /sys/hypervisor/pvisor/patch_level) $(cat /sys/hypervisor/pvisor/lineage_highest) $(cat /sys/hypervisor/pvisor/rolled_back) $(cat /sys/hypervisor/pvisor/restored)"; i=$((i+1)); sleep 1; done`
	orig := startPvisor(t, "run", "--state-dir", state, "--name", "rbl", "--control", sock, "--kernel", filepath.Join(root, "build/guest/bzImage-pv"),
		"--initrd", filepath.Join(root, "build/guest/initramfs.cpio.gz"), "--cmdline", linuxCmdline("hvc0", loop)+" pvisor.patch_level=7")
	orig.waitLine(t, regexp.MustCompile(`(?m)^lin 2 7 7 0 0\r?$`), 5*time.Minute)
	if l := ctl(t, sock, "list"); !strings.Contains(l, "patch level 7, lineage's highest 7, release \"6.12") {
		t.Errorf("ctl list does not show the guest's declaration:\n%s", l)
	}
	snap := filepath.Join(dir, "s7.snap")
	ctl(t, sock, "snapshot", "rbl", snap)
	ctl(t, sock, "patch-level", "rbl", "9")
	orig.waitLine(t, regexp.MustCompile(`(?m)^lin \d+ 9 9 0 0\r?$`), time.Minute)
	ctl(t, sock, "stop", "rbl")
	orig.wait(t, time.Minute)
	b, err := exec.Command(pvisorBin(t), "run", "--state-dir", state, "--restore", snap).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "patch level 7, below its lineage's highest patch level 9") {
		t.Fatalf("restore of the level-7 snapshot: %v\n%s", err, b)
	}
	r := startPvisor(t, "run", "--state-dir", state, "--restore", snap, "--allow-rollback")
	r.waitLine(t, regexp.MustCompile(`(?m)^lin \d+ 7 9 1 1\r?$`), 2*time.Minute)
}

func testRollbackGuard(t *testing.T, mode string) {
	tg := testguest(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	sock := filepath.Join(dir, "ctl.sock")
	orig := startPvisor(t, "run", "--state-dir", state, "--name", "rb", "--control", sock,
		"--kernel", tg, "--mode", mode, "--mem", "64M", "--cmdline", "count=3000")
	orig.waitLine(t, regexp.MustCompile(`(?m)^count: 300 `), 5*time.Minute)
	ctl(t, sock, "pause", "rb")
	s5, s7 := filepath.Join(dir, "s5.snap"), filepath.Join(dir, "s7.snap")
	ctl(t, sock, "patch-level", "rb", "5")
	ctl(t, sock, "snapshot", "rb", s5)
	ctl(t, sock, "patch-level", "rb", "7")
	ctl(t, sock, "snapshot", "rb", s7)
	if l := ctl(t, sock, "list"); !strings.Contains(l, "patch level 7, lineage's highest 7") {
		t.Fatalf("ctl list after patch-level 7:\n%s", l)
	}
	// An operator may set a lower level: the VM's, never the lineage's.
	ctl(t, sock, "patch-level", "rb", "6")
	if l := ctl(t, sock, "list"); !strings.Contains(l, "patch level 6, lineage's highest 7") {
		t.Fatalf("ctl list after patch-level 6:\n%s", l)
	}
	ctl(t, sock, "stop", "rb")
	orig.wait(t, time.Minute)

	pvisor := func(args ...string) (string, int) {
		cmd := exec.Command(pvisorBin(t), args...)
		b, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(b), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(b), 0
	}
	refused := func(snap string, want []string, extra ...string) {
		t.Helper()
		out, code := pvisor(append([]string{"run", "--state-dir", state, "--restore", snap}, extra...)...)
		if code != 2 {
			t.Fatalf("restore of %s %v: exit %d, want 2 (refused):\n%s", filepath.Base(snap), extra, code, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("restore of %s %v: the refusal does not say %q:\n%s", filepath.Base(snap), extra, w, out)
			}
		}
		if strings.Contains(out, "count: ") {
			t.Errorf("a refused restore ran the guest:\n%s", out)
		}
	}
	// restored runs snap paused, checks ctl list, resumes it and returns
	// the guest's own report of its lineage.
	restored := func(snap, name string, listWant []string, listNot string, extra ...string) string {
		t.Helper()
		csock := filepath.Join(dir, name+".sock")
		r := startPvisor(t, append([]string{"run", "--state-dir", state, "--restore", snap, "--name", name, "--paused", "--control", csock}, extra...)...)
		if !waitFor(time.Minute, func() bool { _, err := os.Stat(csock); return err == nil }) {
			t.Fatalf("%s: no control socket; stderr:\n%s", name, r.errs.String())
		}
		l := ctl(t, csock, "list")
		for _, w := range listWant {
			if !strings.Contains(l, w) {
				t.Errorf("%s: ctl list lacks %q:\n%s", name, w, l)
			}
		}
		if listNot != "" && strings.Contains(l, listNot) {
			t.Errorf("%s: ctl list has %q:\n%s", name, listNot, l)
		}
		ctl(t, csock, "resume", name)
		if code := r.wait(t, 5*time.Minute); code != 0 {
			t.Fatalf("%s: exit %d; stderr:\n%s", name, code, r.errs.String())
		}
		m := regexp.MustCompile(`(?m)^count: generation [0-9a-f]{32} (lineage .*)$`).FindStringSubmatch(r.out.String())
		if m == nil {
			t.Fatalf("%s: no lineage report; console:\n%s", name, tail(r.out.String(), 2000))
		}
		return strings.TrimSpace(m[1])
	}

	refused(s5, []string{"patch level 5", "highest patch level 7", "--allow-rollback"})
	if got := restored(s7, "r7", []string{"patch level 7, lineage's highest 7", "restored"}, "ROLLED BACK"); got != "lineage level=7 highest=7 flags=2" {
		t.Errorf("the s7 restore's guest sees %q, want level 7, highest 7, LINEAGE_RESTORED only", got)
	}
	if got := restored(s5, "r5", []string{"patch level 5, lineage's highest 7", "ROLLED BACK"}, "", "--allow-rollback"); got != "lineage level=5 highest=7 flags=3" {
		t.Errorf("the rolled-back restore's guest sees %q, want level 5, highest 7, LINEAGE_RESTORED|LINEAGE_ROLLED_BACK", got)
	}
	out, code := pvisor("snapshot", "--state-dir", state, "mark", s7, "compromised")
	if code != 0 || !strings.Contains(out, "marked compromised") {
		t.Fatalf("snapshot mark: exit %d:\n%s", code, out)
	}
	refused(s7, []string{"marked compromised"})
	refused(s7, []string{"marked compromised"}, "--allow-rollback")
	// The snapshot of s5 stays restorable with --allow-rollback: marking
	// one snapshot marks only that one.
	refused(s5, []string{"patch level 5"})

	// pvisor ctl restore: the same guard, in a new detached pvisor.
	csock := filepath.Join(dir, "ctlr.sock")
	// The restored pvisor is detached: stop it whatever happens.
	t.Cleanup(func() { exec.Command(pvisorBin(t), "ctl", "--control", csock, "stop", "r5b").Run() })
	ctlR := func(extra ...string) (string, int) {
		return pvisor(append([]string{"ctl", "--control", csock, "restore", s5, "--state-dir", state}, extra...)...)
	}
	if out, code := ctlR(); code == 0 || !strings.Contains(out, "highest patch level 7") {
		t.Errorf("ctl restore of s5: exit %d, want the guard's refusal:\n%s", code, out)
	}
	out, code = ctlR("--allow-rollback", "--paused", "--name", "r5b")
	if code != 0 || !strings.Contains(out, "restored r5b") || !strings.Contains(out, "ROLLED BACK") {
		t.Errorf("ctl restore --allow-rollback: exit %d:\n%s", code, out)
	}
	if code == 0 {
		ctl(t, csock, "stop", "r5b")
		waitFor(time.Minute, func() bool { _, err := os.Stat(csock); return err != nil })
	}

	// The event log, in order.
	info, code := pvisor("snapshot", "info", s5)
	m := regexp.MustCompile(`(?m)^lineage\s+([0-9a-f]{32})$`).FindStringSubmatch(info)
	if code != 0 || m == nil {
		t.Fatalf("snapshot info: exit %d:\n%s", code, info)
	}
	id5 := regexp.MustCompile(`(?m)^snapshot\s+([0-9a-f]{32})$`).FindStringSubmatch(info)[1]
	info7, _ := pvisor("snapshot", "info", s7)
	id7 := regexp.MustCompile(`(?m)^snapshot\s+([0-9a-f]{32})$`).FindStringSubmatch(info7)[1]
	f, err := os.Open(filepath.Join(state, "lineages", m[1], "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type event struct {
		Event    string `json:"event"`
		Snapshot string `json:"snapshot"`
		Level    uint64 `json:"patch_level"`
		Highest  uint64 `json:"highest_patch_level"`
		Detail   string `json:"detail"`
	}
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event log line %q: %v", sc.Text(), err)
		}
		s := e.Event
		switch e.Snapshot {
		case id5:
			s += " s5"
		case id7:
			s += " s7"
		}
		if e.Event == "patch-level" || e.Event == "restore-refused" || e.Event == "rollback" {
			s += " " + strings.TrimSpace(strings.Join([]string{itoa(e.Level), itoa(e.Highest)}, "/"))
		}
		got = append(got, s)
	}
	want := []string{
		"boot",
		"patch-level 5/5", "snapshot s5",
		"patch-level 7/7", "snapshot s7",
		"patch-level 6/7",
		"restore-refused s5 5/7",
		"restore s7",
		"rollback s5 5/7",
		"mark-compromised s7",
		"restore-refused s7 7/7", "restore-refused s7 7/7",
		"restore-refused s5 5/7",
		"restore-refused s5 5/7",
		"rollback s5 5/7",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("event log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
