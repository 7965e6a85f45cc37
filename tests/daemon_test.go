package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemonEnv is a pvisor serve and its clients, in one state directory.
type daemonEnv struct {
	t     *testing.T
	state string
	sock  string
	srv   *snapRun
}

func startDaemon(t *testing.T, state string) *daemonEnv {
	t.Helper()
	return startDaemonCmd(t, state, exec.Command(pvisorBin(t), "serve", "--state-dir", state))
}

// startDaemonCmd is startDaemon with the daemon started by cmd.
func startDaemonCmd(t *testing.T, state string, cmd *exec.Cmd) *daemonEnv {
	t.Helper()
	d := &daemonEnv{t: t, state: state, sock: filepath.Join(state, "api.sock")}
	d.srv = startCmd(t, cmd)
	if !waitFor(time.Minute, func() bool {
		c, err := net.Dial("unix", d.sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("pvisor serve: no API socket; stderr:\n%s", d.srv.errs.String())
	}
	if fi, err := os.Stat(d.sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("API socket %v %v: want mode 0600", fi, err)
	}
	return d
}

// cli runs a client verb; it returns the output and exit status.
func (d *daemonEnv) cli(stdin string, args ...string) (string, int) {
	d.t.Helper()
	cmd := exec.Command(pvisorBin(d.t), args...)
	cmd.Env = append(os.Environ(), "PVISOR_STATE_DIR="+d.state)
	cmd.Stdin = strings.NewReader(stdin)
	b, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(b), ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	return string(b), 0
}

// must runs a client verb that must succeed.
func (d *daemonEnv) must(args ...string) string {
	d.t.Helper()
	out, code := d.cli("", args...)
	if code != 0 {
		d.t.Fatalf("pvisor %s: exit %d:\n%s\ndaemon stderr:\n%s", strings.Join(args, " "), code, out, d.srv.errs.String())
	}
	return out
}

// http sends one raw request to the API and returns status and body.
func (d *daemonEnv) http(method, path, body string) (int, string) {
	d.t.Helper()
	c := &http.Client{Transport: &http.Transport{Dial: func(_, _ string) (net.Conn, error) { return net.Dial("unix", d.sock) }}}
	req, err := http.NewRequest(method, "http://pvisor"+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type apiVMInfo struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Mode      string    `json:"mode"`
	Created   time.Time `json:"created"`
	LastExit  string    `json:"last_exit"`
	Snapshots int       `json:"snapshots"`
	Owner     string    `json:"owner"`
}

func (d *daemonEnv) list() []apiVMInfo {
	d.t.Helper()
	code, body := d.http("GET", "/v1/vms", "")
	var vms []apiVMInfo
	if code != 200 || json.Unmarshal([]byte(body), &vms) != nil {
		d.t.Fatalf("GET /v1/vms: %d %s", code, body)
	}
	return vms
}

func (d *daemonEnv) vmState(name string) string {
	for _, v := range d.list() {
		if v.Name == name {
			return v.State
		}
	}
	return "absent"
}

// TestDaemonLifecycle: pvisor serve and its client verbs. A pv and a
// hwassist Linux VM are created, started, attached to (the guest answers
// console input, and keeps running after the client detaches), paused,
// resumed, snapshotted and stopped; malformed requests get a 4xx with a
// message and change nothing; two clients at once see one consistent
// state; the inventory survives a clean daemon restart and a SIGKILL of
// the daemon; a stopped VM restores from its last snapshot, and is
// destroyed.
func TestDaemonLifecycle(t *testing.T) {
	state := t.TempDir()
	d := startDaemon(t, state)
	initrd := filepath.Join(root, "build/guest/initramfs.cpio.gz")
	// The guest echoes each console line back upper-cased: an answer only
	// the running guest can give.
	// With a disk, each line also goes to the disk's next sector, and
	// "dump" prints sectors 0 to 2 as the device holds them (the page
	// cache dropped), so a restore shows whether the disk came back too.
	loop := `echo daemon-ready; n=0; while read l; do if [ "$l" = dump ]; then sync; echo 3 > /proc/sys/vm/drop_caches; for s in 0 1 2; do echo "S$s=$(dd if=/dev/vda bs=512 count=1 skip=$s 2>/dev/null | tr -d '\000')."; done; continue; fi; [ -b /dev/vda ] && echo "$l" | dd of=/dev/vda bs=512 seek=$n conv=sync,notrunc,fsync 2>/dev/null; n=$((n+1)); echo "GOT:$l" | tr a-z A-Z; done`
	base := filepath.Join(state, "base.img")
	if err := os.WriteFile(base, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	// Malformed requests, against an empty inventory: each is refused
	// with a 4xx and a message, and nothing is created.
	recordDir := filepath.Join(state, "daemon", "vms")
	kernelPV := filepath.Join(root, "build/guest/bzImage-pv")
	bad := []struct{ method, path, body string }{
		{"POST", "/v1/vms", `{`},
		{"POST", "/v1/vms", ``},
		{"POST", "/v1/vms", `{"name":"x","kernel":"` + kernelPV + `","bogus":1}`},
		{"POST", "/v1/vms", `{"name":"x","kernel":"` + kernelPV + `"} {}`},
		{"POST", "/v1/vms", `{"name":"../etc","kernel":"` + kernelPV + `"}`},
		{"POST", "/v1/vms", `{"name":"x","kernel":"relative/path"}`},
		{"POST", "/v1/vms", `{"name":"x","kernel":"/nonexistent"}`},
		{"POST", "/v1/vms", `{"name":"x","kernel":"` + kernelPV + `","mem":"12Q"}`},
		{"POST", "/v1/vms", `{"name":"x","kernel":"` + kernelPV + `","mode":"vmx"}`},
		{"POST", "/v1/vms", `{"name":"x","kernel":"` + kernelPV + `","vcpus":-1}`},
		{"POST", "/v1/vms", `{"name":"x","kernel":"` + kernelPV + `","disks":["/nonexistent.img"]}`},
		{"POST", "/v1/vms", `{"name":"x","kernel":"` + kernelPV + `","cmdline":"` + strings.Repeat("a", 5000) + `"}`},
		{"POST", "/v1/vms", `{"name":"x","kernel":"` + kernelPV + `","cmdline":"` + strings.Repeat("a", 70000) + `"}`},
		{"POST", "/v1/vms/nope/start", ``},
		{"GET", "/v1/vms/nope", ``},
		{"DELETE", "/v1/vms/nope", ``},
		{"PUT", "/v1/vms/nope/memory", `{"target":"64M"}`},
		{"GET", "/v1/nothing", ``},
		{"PATCH", "/v1/vms", `{}`},
	}
	for _, b := range bad {
		code, body := d.http(b.method, b.path, b.body)
		var e struct{ Error string }
		if code < 400 || code >= 500 || json.Unmarshal([]byte(body), &e) != nil && code != 405 || code != 405 && e.Error == "" {
			t.Errorf("%s %s %.60q: %d %s: want a 4xx with an error message", b.method, b.path, b.body, code, body)
		}
	}
	if vms := d.list(); len(vms) != 0 {
		t.Fatalf("malformed requests created VMs: %+v", vms)
	}
	if ents, _ := os.ReadDir(recordDir); len(ents) != 0 {
		t.Fatalf("malformed requests left records: %v", ents)
	}

	// A definition from a TOML file: its paths relative to the file.
	toml := filepath.Join(state, "lc-toml.toml")
	absKernel, err := filepath.Abs(kernelPV)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(toml, []byte("name = \"lc-toml\"\nkernel = \""+absKernel+"\"\nmem = \"64M\"\nmode = \"trap\"\nowner = \"toml-team\"\ndisks = [\"base.img,ro\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.must("create", "--config", toml)
	found := false
	for _, v := range d.list() {
		found = found || v.Name == "lc-toml" && v.Owner == "toml-team" && v.Mode == "trap"
	}
	if !found {
		t.Errorf("the TOML definition is not in the inventory: %+v", d.list())
	}
	if err := os.WriteFile(toml, []byte("name = \"lc-bad\"\nkernel = \""+absKernel+"\"\ncolour = \"red\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := d.cli("", "create", "--config", toml); code == 0 || !strings.Contains(out, "colour") {
		t.Errorf("a TOML file with an unknown key: exit %d: %s", code, out)
	}
	d.must("destroy", "lc-toml")

	vms := map[string]struct{ kernel, con string }{
		"lc-pv":       {kernelPV, "hvc0"},
		"lc-hwassist": {filepath.Join(root, "build/guest/bzImage-native"), "ttyS0"},
	}
	for name, k := range vms {
		mode := strings.TrimPrefix(name, "lc-")
		args := []string{"create", name, "--kernel", k.kernel, "--initrd", initrd, "--mode", mode, "--mem", "256M",
			"--owner", "team-" + mode, "--cmdline", linuxCmdline(k.con, loop)}
		if mode == "pv" {
			args = append(args, "--disk", base+",overlay="+filepath.Join(state, "lc-pv.overlay"))
		}
		d.must(args...)
		if out, code := d.cli("", "create", name, "--kernel", k.kernel); code == 0 || !strings.Contains(out, "exists") {
			t.Errorf("a second create of %s: exit %d:\n%s", name, code, out)
		}
		d.must("start", name)
	}
	for name := range vms {
		if !waitFor(5*time.Minute, func() bool { out, _ := d.cli("", "logs", name); return strings.Contains(out, "daemon-ready") }) {
			out, _ := d.cli("", "logs", name)
			t.Fatalf("%s: the guest never became ready; console:\n%s", name, tail(out, 3000))
		}
		// Attach, type a line, detach: the guest answers and goes on.
		out, code := d.cli("hello daemon\n", "console", "--linger", "60s", "--until", "GOT:HELLO DAEMON", name)
		if code != 0 || !strings.Contains(out, "GOT:HELLO DAEMON") {
			t.Errorf("%s: console: exit %d, no answer:\n%s", name, code, tail(out, 2000))
		}
		if s := d.vmState(name); s != "running" {
			t.Fatalf("%s: %s after the console detached, want running", name, s)
		}
		d.must("pause", name)
		if s := d.vmState(name); s != "paused" {
			t.Errorf("%s: %s after pause", name, s)
		}
		d.must("resume", name)
		out = d.must("snapshot", name)
		if !strings.Contains(out, "snapshot ") {
			t.Errorf("%s: snapshot said %q", name, out)
		}
		// The answer to a second line shows the VM resumed after its snapshot.
		out, _ = d.cli("second\n", "console", "--linger", "60s", "--until", "GOT:SECOND", name)
		if !strings.Contains(out, "GOT:SECOND") {
			t.Errorf("%s: no answer after the snapshot:\n%s", name, tail(out, 2000))
		}
	}

	// Two clients at once: concurrent starts of a running VM all fail
	// alike, and concurrent pause/resume with lists never show a state
	// other than running or paused.
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				code, _ := d.http("POST", "/v1/vms/lc-pv/start", "")
				_, _ = d.http("POST", "/v1/vms/lc-pv/pause", "")
				s := d.vmState("lc-pv")
				_, _ = d.http("POST", "/v1/vms/lc-pv/resume", "")
				mu.Lock()
				seen[fmt.Sprintf("start %d", code)]++
				seen[s]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if seen["start 409"] != 10 || seen["running"]+seen["paused"] != 10 {
		t.Errorf("concurrent clients saw %v: want 10 start refusals (409) and only running or paused", seen)
	}
	if s := d.vmState("lc-pv"); s != "running" {
		t.Errorf("lc-pv: %s after the concurrent clients, want running", s)
	}

	// Before the restart the disk has both lines.
	if out, _ := d.cli("dump\n", "console", "--linger", "60s", "--until", "S2=", "lc-pv"); !strings.Contains(out, "S0=hello daemon.") || !strings.Contains(out, "S1=second.") {
		t.Errorf("lc-pv: its disk lacks the lines written:\n%s", tail(out, 2000))
	}

	// A clean restart: the daemon stops the VMs and says so; the
	// inventory is intact.
	before := d.list()
	d.must("stop", "lc-hwassist")
	d.srv.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.srv.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("pvisor serve after SIGTERM: exit %d\n%s", code, d.srv.errs.String())
	}
	d = startDaemon(t, state)
	after := d.list()
	if len(after) != 2 {
		t.Fatalf("after a restart: %+v", after)
	}
	for i, v := range after {
		b := before[i]
		if v.Name != b.Name || v.Mode != b.Mode || !v.Created.Equal(b.Created) || v.Snapshots != 1 || v.Owner != b.Owner || v.State != "stopped" {
			t.Errorf("after a restart %+v, before %+v", v, b)
		}
	}
	if !strings.Contains(after[1].LastExit, "stopped with the daemon") {
		t.Errorf("lc-pv's last exit after a clean daemon stop: %q", after[1].LastExit)
	}

	// The stopped VM restores from its last snapshot and answers again.
	d.must("restore", "lc-pv")
	// The disk is the snapshot's: the first line on it, not the second,
	// which came after the snapshot.
	out, _ := d.cli("dump\n", "console", "--linger", "60s", "--until", "S2=", "lc-pv")
	if !strings.Contains(out, "S0=hello daemon.") || !strings.Contains(out, "S1=.") {
		t.Errorf("lc-pv restored: its disk is not the snapshot's:\n%s", tail(out, 2000))
	}
	out, _ = d.cli("third\n", "console", "--linger", "60s", "--until", "GOT:THIRD", "lc-pv")
	if !strings.Contains(out, "GOT:THIRD") {
		t.Errorf("lc-pv restored: no answer:\n%s", tail(out, 2000))
	}
	// A daemon killed outright: the VM ended with it, and the next daemon
	// says so.
	d.srv.cmd.Process.Signal(syscall.SIGKILL)
	d.srv.wait(t, time.Minute)
	d = startDaemon(t, state)
	for _, v := range d.list() {
		if v.Name == "lc-pv" && (v.State != "stopped" || !strings.Contains(v.LastExit, "without stopping it")) {
			t.Errorf("after a SIGKILL of the daemon: %+v", v)
		}
	}
	// Destroy: refused while running, then done, and it stays done.
	d.must("start", "lc-hwassist")
	if out, code := d.cli("", "destroy", "lc-hwassist"); code == 0 || !strings.Contains(out, "stop it first") {
		t.Errorf("destroy of a running VM: exit %d:\n%s", code, out)
	}
	d.must("stop", "lc-hwassist")
	d.must("destroy", "lc-hwassist")
	events := d.must("events", "lc-pv")
	for _, e := range []string{`"boot"`, `"started"`, `"console-attach"`, `"paused"`, `"resumed"`, `"snapshot"`, `"stopped"`, `"restore"`} {
		if !strings.Contains(events, e) {
			t.Errorf("lc-pv's events lack %s:\n%s", e, events)
		}
	}
	d.srv.cmd.Process.Signal(syscall.SIGTERM)
	d.srv.wait(t, 2*time.Minute)
	d = startDaemon(t, state)
	if l := d.list(); len(l) != 1 || l[0].Name != "lc-pv" {
		t.Errorf("after destroy and a restart: %+v", l)
	}
	var buf bytes.Buffer
	list := exec.Command(pvisorBin(t), "list", "--idle-after", "1s")
	list.Env = append(os.Environ(), "PVISOR_STATE_DIR="+state)
	list.Stdout = &buf
	if err := list.Run(); err != nil || !strings.Contains(buf.String(), "lc-pv") || !strings.Contains(buf.String(), "team-pv") {
		t.Errorf("pvisor list: %v\n%s", err, buf.String())
	}
}
