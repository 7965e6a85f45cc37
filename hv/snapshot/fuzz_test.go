package snapshot

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSnapshotReader feeds arbitrary bytes to the reader, with and without
// the test key, and reads every section as gob, memory and raw bytes: it
// must never panic or hang. The passphrase path is left out: it differs
// only by running argon2id (whose parameters are bounded before it runs,
// TestSnapshotHostileParameters), which is too slow under fuzzing
// instrumentation to leave room for anything else.
func FuzzSnapshotReader(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden-*.snap"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(writeSample(f, newSample(8, 10), Options{ChunkSize: MinChunkSize}))
	keys := []*Key{nil, testKey(f)}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, k := range keys {
			r, err := NewReader(bytes.NewReader(b), ReaderOptions{Key: k, MaxArgon2MemoryKiB: 256})
			if err != nil {
				continue
			}
			for i := 0; ; i++ {
				s, err := r.Next()
				if err != nil {
					break
				}
				switch i % 3 {
				case 0:
					var v sampleState
					s.DecodeGob(&v)
				case 1:
					s.ReadMemory(func(uint64, []byte) error { return nil })
				default:
					io.Copy(io.Discard, s)
				}
			}
		}
	})
}
