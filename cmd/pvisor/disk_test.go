package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/diskcrypt"
)

// TestDiskCommands: keygen, create, encrypt, decrypt and info end to end,
// with a key file and a passphrase; the raw image comes back byte for
// byte, and each verb refuses what it must.
func TestDiskCommands(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := dispatch(append([]string{"disk"}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("keygen", p("k")); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	os.WriteFile(p("pp"), []byte("a passphrase\nignored\n"), 0o600)
	raw := make([]byte, 64<<10)
	rand.NewChaCha8([32]byte{1}).Read(raw)
	os.WriteFile(p("raw"), raw, 0o600)
	for _, key := range [][]string{{"--key-file", p("k")}, {"--passphrase-file", p("pp")}} {
		name := filepath.Base(key[1])
		enc, back := p(name+".img"), p(name+".raw")
		if code, out := run(append([]string{"encrypt", p("raw"), enc}, key...)...); code != 0 {
			t.Fatalf("encrypt %s: %d %s", name, code, out)
		}
		if b, _ := os.ReadFile(enc); bytes.Contains(b, raw[:64]) {
			t.Errorf("%s: the encrypted image holds the plaintext", name)
		}
		// Flags after the operands, as before them.
		if code, out := run(append([]string{"decrypt", enc, back}, key...)...); code != 0 {
			t.Fatalf("decrypt %s: %d %s", name, code, out)
		}
		if b, _ := os.ReadFile(back); !bytes.Equal(b, raw) {
			t.Errorf("%s: decrypt did not give the raw image back", name)
		}
		code, out := run(append(key, "info", enc)...)
		if code != 0 || !strings.Contains(out, "disk size:   65536 bytes") || !strings.Contains(out, "header is authentic") {
			t.Errorf("info %s: %d %s", name, code, out)
		}
		if k, _ := os.ReadFile(p("k")); bytes.Contains([]byte(out), k) || strings.Contains(out, "a passphrase") {
			t.Errorf("info %s prints the key", name)
		}
		if code, out := run(append([]string{"encrypt", p("raw"), enc}, key...)...); code != 1 || !strings.Contains(out, "exists") {
			t.Errorf("encrypt over an existing image: %d %s", code, out)
		}
	}
	if code, out := run("info", p("k.img")); code != 0 || !strings.Contains(out, "needs the key") {
		t.Errorf("info without a key: %d %s", code, out)
	}
	if code, out := run("create", p("new.img"), "--size", "1M", "--key-file", p("k")); code != 0 {
		t.Fatalf("create: %d %s", code, out)
	}
	if h, err := diskcrypt.Inspect(p("new.img")); err != nil || h.PayloadSize != 1<<20 {
		t.Errorf("created image: %v %v", h, err)
	}
	os.WriteFile(p("k2"), bytes.Repeat([]byte{9}, 32), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"info", p("k.img"), "--key-file", p("k2")}, 1, "wrong key"},
		{[]string{"decrypt", p("k.img"), p("x"), "--passphrase-file", p("pp")}, 1, "wrong key"},
		{[]string{"info", p("raw")}, 1, "not a pvisor encrypted disk image"},
		{[]string{"encrypt", p("k.img"), p("x"), "--key-file", p("k")}, 1, "already an encrypted image"},
		{[]string{"encrypt", p("raw"), p("x")}, 2, "give --key-file or --passphrase-file"},
		{[]string{"create", p("x"), "--size", "1000", "--key-file", p("k")}, 1, "multiple of 512"},
		{[]string{"create", p("x"), "--key-file", p("k")}, 1, "give --size"},
		{[]string{"create", p("x"), "--size", "1M", "--key-file", p("k"), "--passphrase-file", p("pp")}, 2, "not both"},
		{[]string{"decrypt", p("k.img"), "--key-file", p("k")}, 2, "want 2 operand"},
		{[]string{"frob"}, 2, "unknown verb"},
		{[]string{"keygen", p("k")}, 1, "exists"},
	} {
		code, out := run(c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("disk %q: %d %s, want %d and %q", c.args, code, out, c.code, c.want)
		}
	}
	if _, err := os.Stat(p("x")); err == nil {
		t.Error("a refused verb left its output behind")
	}
}

// TestParseDiskKey: key= and passphrase= read the key at parse time, in
// --disk and in a --vm spec; a bad key file, both options and an empty
// value are refused.
func TestParseDiskKey(t *testing.T) {
	dir := t.TempDir()
	k, pp, open := filepath.Join(dir, "k"), filepath.Join(dir, "pp"), filepath.Join(dir, "open")
	os.WriteFile(k, bytes.Repeat([]byte{1}, 32), 0o600)
	os.WriteFile(pp, []byte("pass\n"), 0o600)
	os.WriteFile(open, bytes.Repeat([]byte{1}, 32), 0o644)
	d, err := parseDisk("a.img,ro,key=" + k)
	if err != nil || d.Key == nil || d.Key.IsPassphrase() || !d.ReadOnly || d.Path != "a.img" {
		t.Errorf("key=: %+v %v", d, err)
	}
	if d, err := parseDisk("a.img,passphrase=" + pp); err != nil || d.Key == nil || !d.Key.IsPassphrase() {
		t.Errorf("passphrase=: %+v %v", d, err)
	}
	if d, err := parseDisk("a.img"); err != nil || d.Key != nil {
		t.Errorf("a raw disk has a key: %+v %v", d, err)
	}
	for _, v := range []string{"a.img,key=" + open, "a.img,key=" + k + ",passphrase=" + pp, "a.img,key=", "a.img,key=" + filepath.Join(dir, "none")} {
		if _, err := parseDisk(v); err == nil {
			t.Errorf("--disk %s accepted", v)
		}
	}
	s, err := parseVMSpec("name=a,disk=a.img,ro,key="+k+",disk=b.img,passphrase="+pp+",mem=64M", vmSpec{name: "b", mode: cpu.ModePV})
	if err != nil || len(s.disks) != 2 || s.disks[0].Key == nil || !s.disks[0].ReadOnly || s.disks[1].Key == nil || !s.disks[1].Key.IsPassphrase() {
		t.Errorf("--vm spec: %+v %v", s.disks, err)
	}
}
