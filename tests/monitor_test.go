package tests

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hypercall"
)

// TestMonitorGrant: one pvisor runs a target VM (the test guest's plant
// mode: a random 16-byte marker, written at a random address the test
// chooses, exists only there) and a monitor VM (monitor mode: it polls its
// introspection grants, scans a granted target's RAM for the marker, walks
// its page tables, tries bogus handles) under one control socket:
//   - before any grant every introspect call of the monitor is -EPERM;
//   - after `pvisor ctl grant mon introspect tgt` the monitor finds the
//     marker exactly once, at the test's address; it reads the target's
//     registers (CR3 included) and translates the target's RIP and the
//     marker's address through the target's own page tables;
//   - the monitor cannot write the target: no introspect call takes data
//     to the target (checked on the ABI table), the monitor's change to
//     its copy leaves the target's bytes unchanged, and the target keeps
//     verifying its marker intact;
//   - after `pvisor ctl revoke` the old handle is -EPERM again, and a new
//     grant gets a new handle; once the target stops, its handle is
//     -ENOENT and a grant to it is refused;
//   - the grants and revokes are events in both VMs' logs.
//
// In pv and in trap mode: the monitor's hypercalls and the target's
// published registers are the same in every mode.
func TestMonitorGrant(t *testing.T) {
	t.Run("abi", testIntrospectABIReadOnly)
	for _, mode := range []string{"pv", "trap"} {
		t.Run(mode, func(t *testing.T) { testMonitorGrant(t, mode) })
	}
	t.Run("daemon", testMonitorGrantDaemon)
}

// testMonitorGrantDaemon: the same grant through pvisor serve's verbs
// (pvisor grant, pvisor revoke): refused for a stopped target, then the
// monitor finds the marker, then the old handle is -EPERM again; both VMs'
// event logs have the grant and the revoke.
func testMonitorGrantDaemon(t *testing.T) {
	tg := testguest(t)
	d := startDaemon(t, t.TempDir())
	mk := make([]byte, 16)
	if _, err := rand.Read(mk); err != nil {
		t.Fatal(err)
	}
	marker := hex.EncodeToString(mk)
	at := fmt.Sprintf("0x%x", 8<<20+randBelow(t, (24<<20)/4096)*4096+randBelow(t, 4096-16))
	d.must("create", "tgt", "--kernel", tg, "--mem", "32M", "--cmdline", "plant="+marker+" at="+at)
	d.must("create", "mon", "--kernel", tg, "--mem", "32M", "--cmdline", "monitor="+marker)
	d.must("start", "mon")
	if out, code := d.cli("", "grant", "mon", "introspect", "tgt"); code == 0 || !strings.Contains(out, "not running") {
		t.Errorf("a grant on a stopped target: exit %d: %s", code, out)
	}
	d.must("start", "tgt")
	logs := func(vm string) string { out, _ := d.cli("", "logs", vm); return out }
	const long = 3 * time.Minute
	if !waitFor(long, func() bool { return strings.Contains(logs("tgt"), "plant: marker of 16 bytes at gpa="+at) }) {
		t.Fatalf("the target did not plant its marker:\n%s", tail(logs("tgt"), 2000))
	}
	if out := d.must("grant", "mon", "introspect", "tgt"); !strings.Contains(out, "handle 1") {
		t.Errorf("pvisor grant: %q", out)
	}
	done := regexp.MustCompile(`(?m)^monitor: scan done handle=1 bytes=0x2000000 reads=\d+ hits=1$`)
	if !waitFor(long, func() bool { return done.MatchString(logs("mon")) }) {
		t.Fatalf("the monitor did not scan the target:\n%s", tail(logs("mon"), 3000))
	}
	if !strings.Contains(logs("mon"), "monitor: hit gpa="+at+"\n") {
		t.Errorf("the monitor did not find the marker at %s:\n%s", at, tail(logs("mon"), 3000))
	}
	d.must("revoke", "mon", "introspect", "tgt")
	again := regexp.MustCompile(`(?s)scan done handle=1.*\nmonitor: state round=\d+ grants=0 h1=-1\n`)
	if !waitFor(long, func() bool { return again.MatchString(logs("mon")) }) {
		t.Errorf("after pvisor revoke the monitor's handle is not -EPERM:\n%s", tail(logs("mon"), 2000))
	}
	for _, vm := range []string{"mon", "tgt"} {
		ev := d.must("events", vm)
		if !strings.Contains(ev, `"grant"`) || !strings.Contains(ev, `"revoke"`) {
			t.Errorf("%s's events lack the grant and revoke:\n%s", vm, ev)
		}
	}
	d.must("stop", "tgt")
	d.must("stop", "mon")
}

// testIntrospectABIReadOnly: the introspect group has no call that could
// carry the monitor's data to the target. Every argument is a handle, a
// vCPU number, a length, an address in the target that is only read from
// (gpa), or a buffer in the caller's own memory (buf) that the call writes.
func testIntrospectABIReadOnly(t *testing.T) {
	allowed := map[string]bool{"handle": true, "vcpu": true, "len": true, "cap": true, "gpa": true, "buf": true}
	n := 0
	for _, c := range hypercall.Table {
		if c.Group != "introspect" {
			continue
		}
		n++
		for _, a := range c.Args {
			if !allowed[a.Name] {
				t.Errorf("%s: argument %s is none of the read-only kinds", c.Name, a.Name)
			}
			if a.Name == "buf" && (a.Type != hypercall.GPA || !strings.Contains(a.Doc, "caller") && !strings.Contains(c.Name, "targets")) {
				t.Errorf("%s: buf is not a buffer of the caller's: %s", c.Name, a.Doc)
			}
			if a.Name == "gpa" && a.Type == hypercall.GPA {
				t.Errorf("%s: gpa is typed as the caller's memory, but it is the target's", c.Name)
			}
		}
		if strings.Contains(c.Name, "write") || strings.Contains(c.Name, "set") {
			t.Errorf("%s: a call of the introspect group named like a write", c.Name)
		}
	}
	if n != 4 {
		t.Errorf("the introspect group has %d calls, want 4 (targets, memmap, read, vcpu): a new one needs this test's review", n)
	}
}

// randBelow returns a random number in [0, n).
func randBelow(t *testing.T, n uint64) uint64 {
	v, err := rand.Int(rand.Reader, new(big.Int).SetUint64(n))
	if err != nil {
		t.Fatal(err)
	}
	return v.Uint64()
}

func testMonitorGrant(t *testing.T, mode string) {
	tg := testguest(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	state := filepath.Join(dir, "state")
	mk := make([]byte, 16)
	if _, err := rand.Read(mk); err != nil {
		t.Fatal(err)
	}
	marker := hex.EncodeToString(mk)
	// A random page of the target's upper 24 MiB, at a random offset in it
	// (unaligned: the monitor must find it at any byte).
	const mem = 32 << 20
	at := 8<<20 + randBelow(t, (mem-8<<20)/4096)*4096 + randBelow(t, 4096-16)
	atHex := fmt.Sprintf("0x%x", at)
	t.Logf("marker %s at %s", marker, atHex)
	r := startPvisor(t, "run", "--state-dir", state, "--control", sock,
		"--vm", fmt.Sprintf("name=tgt,kernel=%s,mem=32M,mode=%s,cmdline=plant=%s at=%s", tg, mode, marker, atHex),
		"--vm", fmt.Sprintf("name=mon,kernel=%s,mem=32M,mode=%s,cmdline=monitor=%s", tg, mode, marker))
	const long = 3 * time.Minute
	line := func(re string) *regexp.Regexp { return regexp.MustCompile(`(?m)^` + re + `$`) }
	r.waitLine(t, line(`tgt\| plant: marker of 16 bytes at gpa=`+atHex), long)
	// Before the grant: handle 1, the first a grant would get, is -EPERM.
	r.waitLine(t, line(`mon\| monitor: state round=\d+ grants=0 h1=-1`), long)
	if strings.Contains(r.out.String(), "monitor: hit") || strings.Contains(r.out.String(), "monitor: target") {
		t.Fatalf("the monitor saw a target before any grant:\n%s", tail(r.out.String(), 2000))
	}

	// Refusals of the operator's verb.
	ctlFails := func(want string, args ...string) {
		t.Helper()
		b, err := exec.Command(pvisorBin(t), append([]string{"ctl", "--control", sock}, args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(b), want) {
			t.Errorf("pvisor ctl %v: %v, %q; want a refusal saying %q", args, err, b, want)
		}
	}
	ctlFails("the only right is introspect", "grant", "mon", "write", "tgt")
	ctlFails("itself", "grant", "mon", "introspect", "mon")
	ctlFails(`no VM named "nosuch"`, "grant", "mon", "introspect", "nosuch")
	ctlFails("holds no introspection grant", "revoke", "mon", "introspect", "tgt")

	// The grant: the monitor finds the marker at the test's address only.
	if out := ctl(t, sock, "grant", "mon", "introspect", "tgt"); !strings.Contains(out, "handle 1") {
		t.Errorf("ctl grant: %q, want handle 1", out)
	}
	ctlFails("already", "grant", "mon", "introspect", "tgt")
	if l := ctl(t, sock, "list"); !strings.Contains(l, "mon: may read tgt (handle 1): introspection") {
		t.Errorf("ctl list does not show the grant:\n%s", l)
	}
	r.waitLine(t, line(`mon\| monitor: scan done handle=1 bytes=0x2000000 reads=\d+ hits=\d+`), long)
	// The report's last line comes after the scan's: wait for it before
	// reading the report, whatever its figures.
	r.waitLine(t, line(`mon\| monitor: bounds .*`), long)
	out := r.out.String()
	hits := regexp.MustCompile(`(?m)^mon\| monitor: hit gpa=(0x[0-9a-f]+)$`).FindAllStringSubmatch(out, -1)
	if len(hits) != 1 || hits[0][1] != atHex {
		t.Errorf("the monitor's hits: %v, want exactly one at %s:\n%s", hits, atHex, monitorLines(out))
	}
	for _, want := range []string{
		`mon\| monitor: target handle=1 name=tgt mem=0x2000000 vcpus=1 mode=` + map[string]string{"pv": "0", "trap": "1"}[mode],
		`mon\| monitor: scan done handle=1 bytes=0x2000000 reads=\d+ hits=1`,
		`mon\| monitor: memmap 0x100000\+0x[0-9a-f]+ type=1`,
		`mon\| monitor: changed its copy of gpa=` + atHex + `; target unchanged \(reads 16 16\)`,
		// The target idles in vcpu_block: blocked, ring 0, on the loader's tables.
		`mon\| monitor: vcpu0 -> 0 rip=0x[0-9a-f]+ rsp=0x[0-9a-f]+ rflags=0x[0-9a-f]+ cr0=0x8[0-9a-f]+ cr3=0x1000 cr4=0x[0-9a-f]+ efer=0x[0-9a-f]+ cs=0x10 cpl=0 seq=[1-9]\d* flags=1`,
		`mon\| monitor: walk va=` + atHex + ` -> gpa=` + atHex + ` levels=3`,
		`mon\| monitor: bogus handle=0x0 memmap=-1 read=-1 vcpu=-1`,
		`mon\| monitor: bogus handle=0xffffffff memmap=-1 read=-1 vcpu=-1`,
		`mon\| monitor: bogus handle=0x7fffffff memmap=-1 read=-1 vcpu=-1`,
		`mon\| monitor: bogus handle=0x100000001 \(64-bit\) memmap=-22 read=-22 vcpu=-22`,
		`mon\| monitor: bounds beyond=-22 straddle=-22 toolong=-22 wrap=-22 farbuf=-14 vcpu1=-22`,
	} {
		if !line(want).MatchString(out) {
			t.Errorf("no line matching %s:\n%s", want, monitorLines(out))
		}
	}
	// RIP translates to itself: the target runs on the loader's identity map.
	if m := regexp.MustCompile(`(?m)^mon\| monitor: vcpu0 -> 0 rip=(0x[0-9a-f]+) `).FindStringSubmatch(out); m == nil {
		t.Error("no register line")
	} else if !line(`mon\| monitor: walk va=` + m[1] + ` -> gpa=` + m[1] + ` levels=[34]`).MatchString(out) {
		t.Errorf("RIP %s does not translate to itself:\n%s", m[1], monitorLines(out))
	}

	// The target's marker is intact after the scan: it verifies it again.
	verified := func() int { return strings.Count(r.out.String(), "tgt| plant: verified ") }
	v0 := verified()
	if !waitFor(long, func() bool { return verified() > v0 }) {
		t.Errorf("the target verified its marker no more after the scan:\n%s", tail(r.out.String(), 2000))
	}

	// Revoke: -EPERM again; a new grant gets a new handle, never the old.
	ctl(t, sock, "revoke", "mon", "introspect", "tgt")
	r.waitLine(t, regexp.MustCompile(`(?s)scan done handle=1.*\nmon\| monitor: state round=\d+ grants=0 h1=-1\n`), long)
	if out := ctl(t, sock, "grant", "mon", "introspect", "tgt"); !strings.Contains(out, "handle 2") {
		t.Errorf("ctl grant after the revoke: %q, want handle 2", out)
	}
	r.waitLine(t, line(`mon\| monitor: state round=\d+ grants=1 h1=-1 h2=8`), long)
	r.waitLine(t, line(`mon\| monitor: scan done handle=2 bytes=0x2000000 reads=\d+ hits=1`), long)

	// The target stops: its handle ends (-ENOENT), and it cannot be granted.
	ctl(t, sock, "stop", "tgt")
	r.waitLine(t, line(`mon\| monitor: state round=\d+ grants=0 h1=-1 h2=-2`), long)
	ctlFails("has stopped", "grant", "mon", "introspect", "tgt")
	if l := ctl(t, sock, "list"); strings.Contains(l, "may read") {
		t.Errorf("ctl list shows a grant on a stopped target:\n%s", l)
	}
	ctl(t, sock, "stop", "mon")
	r.wait(t, long)
	if o := r.out.String(); strings.Contains(o, "marker changed") || strings.Contains(o, "CHANGED") {
		t.Errorf("the target's marker changed:\n%s", tail(o, 2000))
	}

	// The event logs: both VMs have the grants and the revoke, in order.
	got := map[string][]string{}
	logs, _ := filepath.Glob(filepath.Join(state, "lineages", "*", "events.jsonl"))
	for _, p := range logs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e struct{ VM, Event, Detail string }
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: %q: %v", p, sc.Text(), err)
			}
			got[e.VM] = append(got[e.VM], strings.TrimSpace(e.Event+" "+e.Detail))
		}
		f.Close()
	}
	want := map[string][]string{
		"mon": {"boot", "grant introspect: may read the memory and registers of tgt (handle 1)",
			"revoke introspect: may no longer read tgt", "grant introspect: may read the memory and registers of tgt (handle 2)"},
		"tgt": {"boot", "grant introspect: memory and registers readable by mon (handle 1)",
			"revoke introspect: no longer readable by mon", "grant introspect: memory and registers readable by mon (handle 2)"},
	}
	for vm, w := range want {
		if strings.Join(got[vm], "\n") != strings.Join(w, "\n") {
			t.Errorf("%s's event log:\n%s\nwant:\n%s", vm, strings.Join(got[vm], "\n"), strings.Join(w, "\n"))
		}
	}
}

// monitorLines is the monitor's console, for messages.
func monitorLines(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "mon| ") {
			b.WriteString(l + "\n")
		}
	}
	return tail(b.String(), 4000)
}
