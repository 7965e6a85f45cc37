package tests

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/mm"
)

// chunkSpans splits a snapshot file into its chunks (docs/snapshot.md:
// a 16-byte header with the metadata length at offset 12, the metadata,
// a 32-byte header tag, then chunks of a 5-byte frame, the payload and
// a 32-byte tag, or the GCM ciphertext with its 16-byte tag).
func chunkSpans(t *testing.T, b []byte, encrypted bool) [][2]int {
	t.Helper()
	off := 16 + int(binary.LittleEndian.Uint32(b[12:16])) + 32
	var spans [][2]int
	for off < len(b) {
		l := int(binary.LittleEndian.Uint32(b[off:]))
		end := off + 5 + l + 32
		if encrypted {
			end = off + 5 + l + 16
		}
		if end > len(b) {
			t.Fatalf("chunk at %d runs past the file (%d > %d)", off, end, len(b))
		}
		spans = append(spans, [2]int{off, end})
		off = end
	}
	return spans
}

// TestSnapshotTamper: a snapshot of a running pv test guest, in the digest
// and the encrypted form with small chunks, is refused by Restore when any
// one byte is flipped (every byte of the header and metadata, then bytes
// spread over the whole file), when it is truncated (at every chunk
// boundary and inside chunks), when two chunks are swapped, and when the
// key is wrong. Nothing stays reserved after a refusal, and the unmodified
// file restores.
func TestSnapshotTamper(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	vm, err := hv.New(hv.Config{Kernel: kernel, Cmdline: "count=100000", MemBytes: 8 << 20, Mode: cpu.ModePV,
		Budget: mm.NewBudget(1 << 30), Console: &out})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan hv.ExitStatus, 1)
	go func() { done <- vm.Run() }()
	defer func() {
		vm.Stop(0, "end of test")
		<-done
	}()
	if !waitFor(time.Minute, func() bool { return bytes.Contains([]byte(out.String()), []byte("count: 5 ")) }) {
		t.Fatalf("the guest does not count; console:\n%s", tail(out.String(), 2000))
	}
	kb := make([]byte, 32)
	rand.Read(kb)
	key, _ := snapshot.KeyFromBytes(kb)
	rand.Read(kb)
	other, _ := snapshot.KeyFromBytes(kb)

	for _, form := range []struct {
		name string
		prot snapshot.Protection
		key  *snapshot.Key
	}{{"digest", snapshot.Digest, nil}, {"encrypted", snapshot.Encrypted, key}} {
		t.Run(form.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := vm.Snapshot(&b, hv.SnapshotOptions{File: snapshot.Options{Protection: form.prot, Key: form.key, ChunkSize: 64 << 10}}); err != nil {
				t.Fatal(err)
			}
			good := b.Bytes()
			budget := mm.NewBudget(1 << 30)
			restore := func(img []byte, k *snapshot.Key) error {
				r, err := hv.Restore(bytes.NewReader(img), hv.RestoreConfig{Budget: budget, Key: k})
				if err == nil {
					r.Stop(0, "end of test")
					r.Run()
				}
				if budget.Reserved() != 0 {
					t.Fatalf("%d bytes left reserved", budget.Reserved())
				}
				return err
			}
			if err := restore(good, form.key); err != nil {
				t.Fatalf("the unmodified snapshot: %v", err)
			}
			spans := chunkSpans(t, good, form.prot == snapshot.Encrypted)
			t.Logf("%d bytes, %d chunks", len(good), len(spans))
			if len(spans) < 3 {
				t.Fatalf("only %d chunks: the swap needs three", len(spans))
			}
			refused := func(what string, img []byte, k *snapshot.Key) {
				t.Helper()
				if err := restore(img, k); err == nil {
					t.Errorf("%s: restored", what)
				}
			}
			var offs []int
			for i := 0; i < spans[0][0]; i++ {
				offs = append(offs, i)
			}
			for i := spans[0][0]; i < len(good); i += len(good)/300 + 1 {
				offs = append(offs, i)
			}
			offs = append(offs, len(good)-1)
			for _, i := range offs {
				img := bytes.Clone(good)
				img[i] ^= 0x01
				refused("flip at "+strconv.Itoa(i), img, form.key)
			}
			for _, s := range spans {
				refused("truncated at "+strconv.Itoa(s[0]), good[:s[0]], form.key)
				refused("truncated inside the chunk at "+strconv.Itoa(s[0]), good[:(s[0]+s[1])/2], form.key)
			}
			refused("one byte appended", append(bytes.Clone(good), 0), form.key)
			a, c := spans[0], spans[1]
			swapped := append(append(append(append([]byte(nil), good[:a[0]]...), good[c[0]:c[1]]...), good[a[0]:a[1]]...), good[c[1]:]...)
			refused("chunks 0 and 1 swapped", swapped, form.key)
			if form.key != nil {
				refused("the wrong key", good, other)
				refused("no key", good, nil)
			} else {
				refused("a key for a digest-only snapshot", good, key)
			}
		})
	}
}
