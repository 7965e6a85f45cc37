package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// snapRun is one `pvisor run` process whose console is captured.
type snapRun struct {
	cmd  *exec.Cmd
	out  syncBuffer // the console (stdout)
	errs syncBuffer // pvisor's messages (stderr)
	done chan error
}

func startPvisor(t *testing.T, args ...string) *snapRun {
	t.Helper()
	return startCmd(t, exec.Command(pvisorBin(t), args...))
}

// startCmd starts cmd (a pvisor, or a command that runs one) with its
// output collected; the test's end kills it.
func startCmd(t *testing.T, cmd *exec.Cmd) *snapRun {
	t.Helper()
	r := &snapRun{cmd: cmd, done: make(chan error, 1)}
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.errs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.done
		r.done <- nil
	})
	return r
}

// wait waits for the process to end and returns its exit status.
func (r *snapRun) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatal(err)
	case <-time.After(d):
		t.Fatalf("pvisor did not finish within %v; console:\n%s\nstderr:\n%s", d, tail(r.out.String(), 2000), r.errs.String())
	}
	return -1
}

// waitLine waits until the console has a line matching re.
func (r *snapRun) waitLine(t *testing.T, re *regexp.Regexp, d time.Duration) {
	t.Helper()
	if !waitFor(d, func() bool { return re.MatchString(r.out.String()) }) {
		t.Fatalf("no line matching %v; console:\n%s\nstderr:\n%s", re, tail(r.out.String(), 3000), r.errs.String())
	}
}

func ctl(t *testing.T, sock string, args ...string) string {
	t.Helper()
	b, err := exec.Command(pvisorBin(t), append([]string{"ctl", "--control", sock}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("pvisor ctl %v: %v\n%s", args, err, b)
	}
	return string(b)
}

var genListRE = regexp.MustCompile(`\b([0-9a-f]{32})\b`)

// snapshotCase is a guest running a deterministic computation: what
// pvisor run boots, when to snapshot it, how to read its output.
type snapshotCase struct {
	name string
	boot []string // pvisor run arguments that boot it
	// at is the console line after which the snapshot is taken.
	at *regexp.Regexp
	// keep selects the lines of the computation's output that must match
	// (a kernel's own messages come at times, not at steps).
	keep *regexp.Regexp
	// gen matches the guest's report of its VM generation ID, if it
	// makes one.
	gen *regexp.Regexp
	// last is the computation's last line, in the kept output.
	last string
	// disk gives the VM a disk the computation writes its progress to:
	// the uninterrupted run a raw image of its own, the snapshotted VM and
	// each clone an overlay of its own over one shared base, which none
	// writes. The snapshotted VM goes on writing after the snapshot; the
	// clones restore the disk from the snapshot's disk section, and each
	// disk ends as the uninterrupted run's.
	disk     bool
	deadline time.Duration
}

// TestSnapshotRestore: a guest running a deterministic computation that
// prints its progress is snapshotted mid-run with `pvisor ctl snapshot
// --leave-paused` in one `pvisor run` process, which is then killed (or,
// with a disk, resumed to go on writing its disk to the end); the
// snapshot restored with `pvisor run --restore` in a new process ends
// with exactly the lines an uninterrupted run prints after the snapshot
// point; restored twice at once, it gives two running VMs with different
// generation IDs (in the guest, and in ctl list), both finishing correctly.
// The test guest and Linux (initramfs only: the patched kernel in pv mode,
// the unmodified one in hwassist and trap mode) run in every mode.
func TestSnapshotRestore(t *testing.T) {
	tg := testguest(t)
	var cases []snapshotCase
	for _, mode := range []string{"pv", "trap", "hwassist"} {
		cases = append(cases, snapshotCase{
			name: "testguest/" + mode,
			boot: []string{"--kernel", tg, "--mode", mode, "--mem", "64M", "--cmdline", "count=3000"},
			at:   regexp.MustCompile(`(?m)^count: 300 `),
			keep: regexp.MustCompile(`^count: `),
			gen:  regexp.MustCompile(`(?m)^count: generation ([0-9a-f]{32}) lineage .*$`),
			last: "count: done\n",
			// The interpreter runs it in a few seconds; the rest is margin
			// for a loaded host.
			deadline: 5 * time.Minute,
		})
	}
	// A shell loop: each step hashes the previous step's sum with md5sum
	// (a fork and exec per step), so the snapshot falls among processes,
	// page faults and timer interrupts.
	const loop = `s=seed; i=0; while [ $i -lt 120 ]; do s=$(echo "$s $i" | md5sum | cut -c1-16); echo "step $i $s"; i=$((i+1)); done; echo loop-done`
	linuxCase := func(mode, kernel, con string) snapshotCase {
		return snapshotCase{
			name: "linux/" + mode,
			boot: []string{"--kernel", kernel, "--initrd", filepath.Join(root, "build/guest/initramfs.cpio.gz"), "--mode", mode,
				"--mem", "256M", "--cmdline", linuxCmdline(con, loop)},
			at:       regexp.MustCompile(`(?m)^step 30 `),
			keep:     regexp.MustCompile(`^(step \d+ [0-9a-f]{16}|loop-done|pvisor-exit: \d+)\r?$`),
			last:     "step 119 ",
			deadline: 15 * time.Minute,
		}
	}
	vmlinuxPV, _, _ := pvGuest(t)
	vmlinux, _ := linuxGuest(t)
	cases = append(cases, linuxCase("pv", vmlinuxPV, "hvc0"), linuxCase("hwassist", vmlinux, "ttyS0"), linuxCase("trap", vmlinux, "ttyS0"))
	// The same loop writing each step to its disk too, a whole page each
	// (so no step rewrites an earlier one from the page cache), on the
	// hypercall transport (pv) and on virtio-mmio (hwassist, trap). At the
	// end the guest drops its page cache and prints the digest of what the
	// disk holds, so that the console also tells what the device gave back.
	const diskLoop = `s=seed; i=0; while [ $i -lt 120 ]; do s=$(echo "$s $i" | md5sum | cut -c1-16); echo "step $i $s"; ` +
		`echo "step $i $s" | dd of=/dev/vda bs=4096 seek=$i conv=sync,notrunc,fsync 2>/dev/null; i=$((i+1)); done; sync; ` +
		`echo 3 > /proc/sys/vm/drop_caches; echo "disk $(dd if=/dev/vda bs=4096 count=120 2>/dev/null | md5sum | cut -c1-32)"; echo loop-done`
	for _, d := range []struct{ mode, kernel, con string }{{"pv", vmlinuxPV, "hvc0"}, {"hwassist", vmlinux, "ttyS0"}, {"trap", vmlinux, "ttyS0"}} {
		c := linuxCase(d.mode, d.kernel, d.con)
		c.name += "-disk"
		c.boot[len(c.boot)-1] = linuxCmdline(d.con, diskLoop)
		c.keep = regexp.MustCompile(`^(step \d+ [0-9a-f]{16}|disk [0-9a-f]{32}|loop-done|pvisor-exit: \d+)\r?$`)
		c.disk = true
		cases = append(cases, c)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { snapshotRestore(t, c) })
	}
}

func snapshotRestore(t *testing.T, c snapshotCase) {
	dir := t.TempDir()
	img := func(name string) string { return filepath.Join(dir, name+".img") }
	ovl := func(name string) string { return filepath.Join(dir, name+".ovl") }
	// The uninterrupted run writes a raw copy of the base; the others
	// each write an overlay of their own over the base.
	diskArgs := func(name string) []string {
		switch {
		case !c.disk:
			return nil
		case name == "full":
			return []string{"--disk", img("full")}
		}
		return []string{"--disk", img("base") + ",overlay=" + ovl(name)}
	}
	const line = "a base image's bytes, which reads fall through to\n"
	baseBytes := bytes.Repeat([]byte(line), 1<<20/len(line)+1)[:1<<20]
	if c.disk {
		for _, n := range []string{"full", "base"} {
			if err := os.WriteFile(img(n), baseBytes, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The uninterrupted run, beside the one to be snapshotted.
	full := startPvisor(t, append(append([]string{"run", "--name", "full"}, c.boot...), diskArgs("full")...)...)
	sock := filepath.Join(dir, "ctl.sock")
	orig := startPvisor(t, append(append([]string{"run", "--control", sock}, c.boot...), diskArgs("orig")...)...)
	orig.waitLine(t, c.at, c.deadline)
	snap := filepath.Join(dir, "vm.snap")
	t0 := time.Now()
	ctl(t, sock, "--leave-paused", "snapshot", "guest", snap)
	t.Logf("snapshot in %v", time.Since(t0).Round(time.Millisecond))
	list := ctl(t, sock, "list")
	if !strings.Contains(list, "paused") {
		t.Errorf("after snapshot --leave-paused, ctl list says:\n%s", list)
	}
	origGen := genListRE.FindString(list)
	if origGen == "" {
		t.Fatalf("no generation ID in ctl list:\n%s", list)
	}
	// Whatever the paused VM printed is out before the snapshot is (the
	// console is flushed), and it prints nothing more while paused.
	before := orig.out.String()
	if c.disk {
		// It goes on, writing its overlay past the snapshot's.
		ctl(t, sock, "resume", "guest")
	} else {
		orig.cmd.Process.Signal(syscall.SIGKILL)
		orig.wait(t, time.Minute)
		if after := orig.out.String(); after != before {
			t.Errorf("the paused VM printed %q after the snapshot", strings.TrimPrefix(after, before))
		}
	}
	if fi, err := os.Stat(snap); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v %v", fi, err)
	}

	// Restored twice at once, each in its own process with its own
	// control socket.
	var clones [2]*snapRun
	var socks [2]string
	for i := range clones {
		name := fmt.Sprintf("clone%d", i)
		socks[i] = filepath.Join(dir, name+".sock")
		clones[i] = startPvisor(t, append([]string{"run", "--restore", snap, "--name", name, "--control", socks[i], "--stats"}, diskArgs(name)...)...)
	}
	var listGens [2]string
	for i, r := range clones {
		if !waitFor(time.Minute, func() bool { _, err := os.Stat(socks[i]); return err == nil }) {
			t.Fatalf("clone %d: no control socket; stderr:\n%s", i, r.errs.String())
		}
		l, err := exec.Command(pvisorBin(t), "ctl", "--control", socks[i], "list").CombinedOutput()
		if err == nil {
			listGens[i] = genListRE.FindString(string(l))
		}
	}
	for i, r := range clones {
		if code := r.wait(t, c.deadline); code != 0 {
			t.Fatalf("clone %d: exit status %d; console:\n%s\nstderr:\n%s", i, code, tail(r.out.String(), 2000), r.errs.String())
		}
	}
	if code := full.wait(t, c.deadline); code != 0 {
		t.Fatalf("uninterrupted run: exit status %d; stderr:\n%s", code, full.errs.String())
	}
	want := filterLines(full.out.String(), c.keep, c.gen)
	if !strings.Contains(want, c.last) {
		t.Fatalf("the uninterrupted run has no %q line:\n%s", c.last, tail(full.out.String(), 2000))
	}
	if c.disk {
		if code := orig.wait(t, c.deadline); code != 0 {
			t.Fatalf("the snapshotted VM, resumed: exit status %d; stderr:\n%s", code, orig.errs.String())
		}
		if got := filterLines(orig.out.String(), c.keep, c.gen); got != want {
			t.Errorf("the snapshotted VM, resumed: its output is not the uninterrupted run's:\n%s", lineDiff(want, got))
		}
	}
	var gens []string
	for i, r := range clones {
		got := filterLines(before+r.out.String(), c.keep, c.gen)
		if got != want {
			t.Errorf("clone %d: the output before the snapshot and after the restore is not the uninterrupted run's:\n%s", i, lineDiff(want, got))
		}
		m := regexp.MustCompile(`(?m)^generation: ([0-9a-f]{32})$`).FindStringSubmatch(r.errs.String())
		if m == nil {
			t.Fatalf("clone %d: no generation in --stats:\n%s", i, r.errs.String())
		}
		if listGens[i] != "" && listGens[i] != m[1] {
			t.Errorf("clone %d: ctl list said generation %s, --stats %s", i, listGens[i], m[1])
		}
		gens = append(gens, m[1])
		if c.gen != nil {
			g := c.gen.FindStringSubmatch(r.out.String())
			if g == nil || g[1] != m[1] {
				t.Errorf("clone %d: the guest read generation %v, the VM has %s", i, g, m[1])
			}
		}
	}
	if c.disk {
		want, err := os.ReadFile(img("full"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(want, []byte("step 119 ")) {
			t.Fatalf("the uninterrupted run's disk lacks its last step")
		}
		for i, name := range []string{"clone0", "clone1", "orig"} {
			if i < len(clones) && strings.Contains(clones[i].errs.String(), "warning") {
				t.Errorf("%s: the restore warned:\n%s", name, clones[i].errs.String())
			}
			flat := img(name + "-flat")
			if b, err := exec.Command(pvisorBin(t), "disk", "flatten", img("base"), ovl(name), flat).CombinedOutput(); err != nil {
				t.Fatalf("pvisor disk flatten %s: %v\n%s", name, err, b)
			}
			got, err := os.ReadFile(flat)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: its disk (the base and its overlay) is not the uninterrupted run's", name)
			}
		}
		if got, err := os.ReadFile(img("base")); err != nil || !bytes.Equal(got, baseBytes) {
			t.Errorf("the base image changed (%v)", err)
		}
	}
	if gens[0] == gens[1] || gens[0] == origGen || gens[1] == origGen {
		t.Errorf("generation IDs: original %s, clones %s and %s: want three different", origGen, gens[0], gens[1])
	}
	t.Logf("snapshot %d KiB; %d lines before the snapshot; restore: %s", fileSize(snap)>>10,
		strings.Count(filterLines(before, c.keep, c.gen), "\n"), firstLine(clones[0].errs.String(), "pvisor: restored"))
}

// filterLines keeps the lines matching keep but not gen, without CRs.
func filterLines(s string, keep, gen *regexp.Regexp) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r", ""), "\n") {
		if keep.MatchString(l) && (gen == nil || !gen.MatchString(l)) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// lineDiff shows where two line lists first differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d: want %q, got %q (%d lines, want %d)", i+1, a, b, len(g), len(w))
		}
	}
	return "same"
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func firstLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
