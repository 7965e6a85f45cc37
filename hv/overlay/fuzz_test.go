package overlay

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/pvisor/pvisor/hv/virtio"
)

// FuzzOverlay feeds arbitrary bytes to the overlay file's header and map
// parser and, as a delta, to the delta's header and index checks: each
// either refuses them or yields a map whose every entry names a distinct
// slot the file holds (with the header's checksum recomputed or not); none panics or allocates beyond what the base's
// size bounds.
//
//	go test ./hv/overlay -run '^$' -fuzz FuzzOverlay -fuzztime 60s -fuzzminimizetime 2s
//
// (the seeds are whole overlay files: the default minimisation of such
// inputs takes most of the fuzzing time).
func FuzzOverlay(f *testing.F) {
	dir := f.TempDir()
	basePath := filepath.Join(dir, "base.img")
	baseBytes := bytes.Repeat([]byte("pvisor base image "), 1000) // 18000 bytes: a partial last cluster
	if err := os.WriteFile(basePath, baseBytes, 0o600); err != nil {
		f.Fatal(err)
	}
	var id Identity
	for i, cs := range []int64{4096, 8192} {
		b, err := os.Open(basePath)
		if err != nil {
			f.Fatal(err)
		}
		base, err := virtio.NewFileStore(b)
		if err != nil {
			f.Fatal(err)
		}
		ovl := filepath.Join(dir, "ovl"+string(rune('a'+i)))
		s, err := Open(ovl, base, Options{ClusterSize: cs})
		if err != nil {
			f.Fatal(err)
		}
		id = s.Base()
		for _, off := range []int64{0, 8192, 16384} {
			if _, err := s.WriteAt(bytes.Repeat([]byte{byte(off)}, 512), off); err != nil {
				f.Fatal(err)
			}
		}
		var d bytes.Buffer
		if err := s.WriteDelta(&d); err != nil {
			f.Fatal(err)
		}
		if err := s.Close(); err != nil {
			f.Fatal(err)
		}
		file, err := os.ReadFile(ovl)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(file, false)
		f.Add(file, true)
		f.Add(d.Bytes(), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, reseal bool) {
		if reseal && len(data) >= headerUsed {
			// As an attacker who recomputes the header's checksum would,
			// so that the fuzzer reaches the fields and the map.
			sum := sha256.Sum256(data[:88])
			copy(data[88:headerUsed], sum[:])
		}
		var s Store
		if err := s.load(bytes.NewReader(data), int64(len(data)), id); err == nil {
			if int64(len(s.m)) != s.h.entries || int64(s.next) > s.h.entries {
				t.Fatalf("map of %d entries, %d slots, for %d clusters", len(s.m), s.next, s.h.entries)
			}
			seen := map[uint32]bool{}
			for c, e := range s.m {
				if e == 0 {
					continue
				}
				if e > s.next || seen[e] || s.slotOff(e)+s.h.clusterSize > int64(len(data)) {
					t.Fatalf("cluster %d in slot %d: %d slots, %d-byte file", c, e-1, s.next, len(data))
				}
				seen[e] = true
			}
		}
		d, err := ReadDeltaHeader(bytes.NewReader(data), uint64(len(data)))
		if err != nil {
			return
		}
		if uint64(len(data)) != DeltaHeaderSize+uint64(d.Clusters)*(4+uint64(d.ClusterSize)) {
			t.Fatalf("delta header accepted for a %d-byte delta: %+v", len(data), d)
		}
		h, err := layout(d.ClusterSize, d.Base)
		if err != nil {
			t.Fatalf("delta header accepted with a bad layout: %v", err)
		}
		_ = checkIndexes(data[DeltaHeaderSize:DeltaHeaderSize+4*d.Clusters], h.entries)
	})
}
