package attest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const nonce = "00112233445566778899aabbccddeeff"

func sampleLog(t *testing.T) *Log {
	t.Helper()
	var l Log
	for _, e := range [][2]string{{"pvisor", "/usr/bin/pvisor"}, {"kernel", "vmlinux"}, {"initrd", "none"}, {"cmdline", "console=hvc0"}, {"mode", "pv"}} {
		if err := l.ExtendData(e[0], e[1], []byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	return &l
}

// TestExtendReplay: the register is the fold the package doc states, and
// a replay of the events reproduces it.
func TestExtendReplay(t *testing.T) {
	l := sampleLog(t)
	var reg [32]byte
	for _, e := range l.Events() {
		d, _ := hex.DecodeString(e.Digest)
		ed := sha256.Sum256([]byte(e.Kind + "\x00" + e.Detail + "\x00" + string(d)))
		reg = sha256.Sum256(append(reg[:], ed[:]...))
	}
	if reg != l.Register() {
		t.Fatalf("register %x, want %x", l.Register(), reg)
	}
	if r, err := Replay(l.Events()); err != nil || r != reg {
		t.Fatalf("replay: %x %v", r, err)
	}
	var empty Log
	if empty.Register() != ([32]byte{}) {
		t.Fatal("an empty log's register is not zero")
	}
}

// TestQuoteTamper: a quote verifies with its key and nonce, and every
// change of it is refused.
func TestQuoteTamper(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	l := sampleLog(t)
	q, err := Sign(key, "vm1", l, nonce, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(q, pub, nonce); err != nil {
		t.Fatalf("a genuine quote: %v", err)
	}
	resign := func(q *Quote) { // an attacker without the key cannot do this; one with another key can
		msg, _ := quoteMessage(q)
		q.Signature = hex.EncodeToString(ed25519.Sign(other, msg))
		q.PublicKey = hex.EncodeToString(other.Public().(ed25519.PublicKey))
	}
	cases := []struct {
		name  string
		edit  func(q *Quote)
		nonce string
		want  string
	}{
		{"another nonce asked", func(q *Quote) {}, "ffeeddccbbaa99887766554433221100", "replayed"},
		{"nonce edited", func(q *Quote) { q.Nonce = "ffeeddccbbaa99887766554433221100" }, nonce, "signature"},
		{"register edited", func(q *Quote) { q.Register = strings.Repeat("0", 64) }, nonce, "signature"},
		{"event digest edited", func(q *Quote) { q.Events[1].Digest = strings.Repeat("ab", 32) }, nonce, "signature"},
		{"event dropped", func(q *Quote) { q.Events = q.Events[1:] }, nonce, "signature"},
		{"events reordered", func(q *Quote) { q.Events[0], q.Events[1] = q.Events[1], q.Events[0] }, nonce, "signature"},
		{"VM renamed", func(q *Quote) { q.VM = "vm2" }, nonce, "signature"},
		{"time edited", func(q *Quote) { q.Time = q.Time.Add(time.Hour) }, nonce, "signature"},
		{"signature flipped", func(q *Quote) { q.Signature = "00" + q.Signature[2:] }, nonce, "signature"},
		{"signed by another key", resign, nonce, "signed by key"},
		{"another key named", func(q *Quote) { q.PublicKey = hex.EncodeToString(other.Public().(ed25519.PublicKey)) }, nonce, "signed by key"},
		{"format", func(q *Quote) { q.Format = 2 }, nonce, "format"},
		{"log that does not replay, signed", func(q *Quote) {
			q.Events[1].Digest = strings.Repeat("ab", 32)
			msg, _ := quoteMessage(q)
			q.Signature = hex.EncodeToString(ed25519.Sign(key, msg))
		}, nonce, "replay"},
		{"bad digest", func(q *Quote) { q.Events[0].Digest = "xyz" }, nonce, "signature"},
		{"short nonce", func(q *Quote) { q.Nonce = "00" }, nonce, "nonce"},
	}
	for _, c := range cases {
		c2 := *q
		c2.Events = append([]Event(nil), q.Events...)
		c.edit(&c2)
		err := Verify(&c2, pub, c.nonce)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
	}
}

func TestHostKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := HostKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := HostKey(dir)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second load: %v", err)
	}
	path := filepath.Join(dir, keyFile)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode())
	}
	os.Chmod(path, 0o640)
	if _, err := HostKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := HostKey(dir); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestNonceAndLimits(t *testing.T) {
	for _, n := range []string{"", "zz", strings.Repeat("0", 30), strings.Repeat("0", 130)} {
		if _, err := ParseNonce(n); err == nil {
			t.Errorf("nonce %q accepted", n)
		}
	}
	var l Log
	if err := l.ExtendData("", "x", nil); err == nil {
		t.Error("empty kind accepted")
	}
	if err := l.ExtendData("k", "a\x00b", nil); err == nil {
		t.Error("NUL in detail accepted")
	}
	if _, err := Replay(make([]Event, MaxEvents+1)); err == nil {
		t.Error("an over-long log replayed")
	}
}
