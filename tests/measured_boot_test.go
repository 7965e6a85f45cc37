package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMeasuredBoot: the daemon's quote of a VM's measurement log
// (pvisor attest) changes when one byte of its kernel, initramfs or
// command line does, and the launch policy refuses each change; a quote
// verifies (pvisor verify) against its nonce, the host's public key and
// the expected measurements, and fails with another nonce (a replay),
// another key, or an edited log. The guest's own view of its
// measurements (measured_boot) is checked by TestTestguest's checks.
func TestMeasuredBoot(t *testing.T) {
	tg := testguest(t)
	dir := t.TempDir()
	kernel, err := os.ReadFile(tg)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// flip changes the last byte: of the test guest, a byte of its ELF
	// section headers, which the loader does not read, so that the VM
	// with it runs as the others do and only its measurement differs.
	flip := func(b []byte) []byte {
		c := append([]byte(nil), b...)
		c[len(c)-1] ^= 1
		return c
	}
	initrdBytes := []byte("an initramfs of the measured-boot test, 0123456789")
	initrd := write("initrd", initrdBytes)
	kernel2 := write("kernel-1byte", flip(kernel))
	initrd2 := write("initrd-1byte", flip(initrdBytes))
	const cmdline, cmdline2 = "count=100000000", "count=100000001"

	d := startDaemon(t, filepath.Join(dir, "state"))
	expect := filepath.Join(dir, "expected.json")
	d.must("measure", "--kernel", tg, "--initrd", initrd, "--cmdline", cmdline, "-o", expect)
	pub := strings.TrimSpace(d.must("attest", "--public-key"))
	if len(pub) != 64 {
		t.Fatalf("public key %q", pub)
	}

	vms := []struct{ name, kernel, initrd, cmdline string }{
		{"mb", tg, initrd, cmdline},
		{"mb-kernel", kernel2, initrd, cmdline},
		{"mb-initrd", tg, initrd2, cmdline},
		{"mb-cmdline", tg, initrd, cmdline2},
	}
	const nonce = "8f1c2a7e55d04b39a6e1f0c3b2d49a7e"
	type quote struct {
		Register string `json:"register"`
		Events   []struct {
			Kind, Detail, Digest string
		} `json:"events"`
	}
	quotes := map[string]string{}
	regs := map[string]string{}
	for _, v := range vms {
		d.must("create", v.name, "--kernel", v.kernel, "--initrd", v.initrd, "--mem", "64M", "--cmdline", v.cmdline)
		d.must("start", v.name)
		qf := filepath.Join(dir, v.name+".quote")
		d.must("attest", v.name, "--nonce", nonce, "-o", qf)
		b, _ := os.ReadFile(qf)
		var q quote
		if err := json.Unmarshal(b, &q); err != nil || len(q.Register) != 64 {
			t.Fatalf("%s: quote %s (%v)", v.name, b, err)
		}
		kinds := []string{}
		for _, e := range q.Events {
			kinds = append(kinds, e.Kind)
		}
		if got := strings.Join(kinds, ","); !strings.HasPrefix(got, "pvisor,kernel,initrd,cmdline,abi,mode") {
			t.Errorf("%s: the log measures %s, want pvisor, kernel, initrd, cmdline, abi, mode first", v.name, got)
		}
		quotes[v.name], regs[v.name] = qf, q.Register
		if v.name == "mb" {
			// A patch level the VM reaches extends the log.
			d.must("patch-level", v.name, "7")
			pf := filepath.Join(dir, "mb-level.quote")
			d.must("attest", v.name, "--nonce", nonce, "-o", pf)
			b, _ := os.ReadFile(pf)
			var p quote
			json.Unmarshal(b, &p)
			if n := len(p.Events); n != len(q.Events)+1 || p.Events[n-1].Kind != "patch-level" || p.Events[n-1].Detail != "7" || p.Register == q.Register {
				t.Errorf("after patch-level 7 the log is %+v, want one more event, patch-level 7, and a new register", p.Events)
			}
			if out, code := d.cli("", "verify", "--quote", pf, "--nonce", nonce, "--public-key", pub, "--expect", expect); code != 0 {
				t.Errorf("the quote with a patch level: exit %d\n%s", code, out)
			}
		}
		d.must("stop", v.name)
	}
	verify := func(qf, nonce, pub string, extra ...string) (string, int) {
		t.Helper()
		return d.cli("", append([]string{"verify", "--quote", qf, "--nonce", nonce, "--public-key", pub}, extra...)...)
	}
	if out, code := verify(quotes["mb"], nonce, pub, "--expect", expect); code != 0 || !strings.Contains(out, "quote verified") {
		t.Fatalf("the genuine quote: exit %d:\n%s", code, out)
	}
	for _, v := range vms[1:] {
		if regs[v.name] == regs["mb"] {
			t.Errorf("%s: the register did not change with one byte", v.name)
		}
		// Genuine, so it verifies alone, but not against the expected file.
		if out, code := verify(quotes[v.name], nonce, pub); code != 0 {
			t.Errorf("%s: its own quote does not verify: %s", v.name, out)
		}
		if out, code := verify(quotes[v.name], nonce, pub, "--expect", expect); code != 1 || !strings.Contains(out, "differ") {
			t.Errorf("%s: verified against the original's measurements: exit %d\n%s", v.name, code, out)
		}
		// The launch policy refuses to start it.
		name := v.name + "-policy"
		d.must("create", name, "--kernel", v.kernel, "--initrd", v.initrd, "--mem", "64M", "--cmdline", v.cmdline, "--expect-measurements", expect)
		if out, code := d.cli("", "start", name); code == 0 || !strings.Contains(out, "refused by the launch policy") {
			t.Errorf("%s: started under the launch policy: exit %d\n%s", name, code, out)
		}
	}
	// A replay: the quote answers its own nonce, not the verifier's new one.
	if out, code := verify(quotes["mb"], "00112233445566778899aabbccddeeff", pub); code != 1 || !strings.Contains(out, "replayed") {
		t.Errorf("a replayed quote: exit %d\n%s", code, out)
	}
	// Another host's key.
	other := strings.TrimSpace(d.must("attest", "--public-key", "--state-dir", filepath.Join(dir, "other-host")))
	if out, code := verify(quotes["mb"], nonce, other); code != 1 || !strings.Contains(out, "signed by key") {
		t.Errorf("another key: exit %d\n%s", code, out)
	}
	// An edited log (the kernel event of the changed-kernel VM put into the
	// genuine quote).
	b, _ := os.ReadFile(quotes["mb"])
	var kq quote
	kb, _ := os.ReadFile(quotes["mb-kernel"])
	json.Unmarshal(kb, &kq)
	var good quote
	json.Unmarshal(b, &good)
	edited := strings.Replace(string(b), good.Events[1].Digest, kq.Events[1].Digest, 1)
	if edited == string(b) {
		t.Fatal("could not edit the quote")
	}
	ef := filepath.Join(dir, "edited.quote")
	os.WriteFile(ef, []byte(edited), 0o600)
	if out, code := verify(ef, nonce, pub); code != 1 || !strings.Contains(out, "signature") {
		t.Errorf("an edited log: exit %d\n%s", code, out)
	}
	// Bad nonces are refused by the daemon.
	for _, n := range []string{"", "xyz", "00"} {
		if out, code := d.cli("", "attest", "mb", "--nonce", n); code == 0 {
			t.Errorf("nonce %q accepted:\n%s", n, out)
		}
	}
}
