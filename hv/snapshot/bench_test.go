package snapshot

import (
	"bytes"
	"io"
	"testing"
)

// benchMemory is 64 MiB of guest memory, every page resident and
// incompressible, the size of issue 13's benchmark VM's resident set.
func benchMemory(b *testing.B) []byte {
	ram := make([]byte, 64<<20)
	(&detRand{seed: "bench"}).Read(ram)
	return ram
}

func benchOpts(b *testing.B, p Protection) Options {
	if p == Digest {
		return Options{}
	}
	return Options{Protection: p, Key: testKey(b)}
}

func benchWrite(b *testing.B, p Protection) {
	ram := benchMemory(b)
	md := testMetadata(len(ram) / PageSize)
	b.SetBytes(int64(len(ram)))
	b.ResetTimer()
	for range b.N {
		w, err := NewWriter(io.Discard, md, benchOpts(b, p))
		if err != nil {
			b.Fatal(err)
		}
		if err := w.WriteMemory(ram, nil); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRead(b *testing.B, p Protection) {
	ram := benchMemory(b)
	md := testMetadata(len(ram) / PageSize)
	var out bytes.Buffer
	w, _ := NewWriter(&out, md, benchOpts(b, p))
	w.WriteMemory(ram, nil)
	w.Close()
	dst := make([]byte, len(ram))
	var ropt ReaderOptions
	if p != Digest {
		ropt.Key = testKey(b)
	}
	b.SetBytes(int64(len(ram)))
	b.ResetTimer()
	for range b.N {
		r, err := NewReader(bytes.NewReader(out.Bytes()), ropt)
		if err != nil {
			b.Fatal(err)
		}
		s, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := s.LoadMemory(dst); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Next(); err != io.EOF {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteDigest(b *testing.B)    { benchWrite(b, Digest) }
func BenchmarkWriteMAC(b *testing.B)       { benchWrite(b, MAC) }
func BenchmarkWriteEncrypted(b *testing.B) { benchWrite(b, Encrypted) }
func BenchmarkReadDigest(b *testing.B)     { benchRead(b, Digest) }
func BenchmarkReadMAC(b *testing.B)        { benchRead(b, MAC) }
func BenchmarkReadEncrypted(b *testing.B)  { benchRead(b, Encrypted) }

// BenchmarkWriteSparse: 256 MiB of guest memory with 64 MiB resident (the
// rest zero), so the zero-page scan is in the figure.
func BenchmarkWriteSparse(b *testing.B) {
	ram := make([]byte, 256<<20)
	copy(ram, benchMemory(b))
	md := testMetadata(len(ram) / PageSize)
	b.SetBytes(int64(len(ram)))
	b.ResetTimer()
	for range b.N {
		w, _ := NewWriter(io.Discard, md, Options{})
		if err := w.WriteMemory(ram, nil); err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
}

// BenchmarkArgon2idDefault is the cost of opening a passphrase snapshot
// with DefaultArgon2.
func BenchmarkArgon2idDefault(b *testing.B) {
	k := testPassphrase(b)
	var out bytes.Buffer
	w, _ := NewWriter(&out, testMetadata(1), Options{Protection: Encrypted, Key: k})
	w.Close()
	b.ResetTimer()
	for range b.N {
		if _, err := NewReader(bytes.NewReader(out.Bytes()), ReaderOptions{Key: k}); err != nil {
			b.Fatal(err)
		}
	}
}
