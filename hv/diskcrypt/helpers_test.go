package diskcrypt

import (
	"os"

	"golang.org/x/sys/unix"

	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/hv/virtio"
)

var _ virtio.BlockStore = (*Store)(nil)

// testArgon2 is a cheap argon2id cost for tests (the format's rules, not
// argon2id's strength, are under test).
var testArgon2 = snapshot.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func testKey(t testing.TB, seed byte) *snapshot.Key {
	t.Helper()
	k, err := snapshot.KeyFromBytes(bytes.Repeat([]byte{seed}, snapshot.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testPassphrase(t testing.TB, p string) *snapshot.Key {
	t.Helper()
	k, err := snapshot.Passphrase([]byte(p))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// detRand is a deterministic random source for disk IDs and salts.
func detRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return rand.NewChaCha8(s)
}

// newImage creates an image of size bytes of plaintext (zeros if nil)
// under k in a fresh directory and returns its path.
func newImage(t testing.TB, size int64, k *snapshot.Key, plain []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	var src *bytes.Reader
	o := CreateOptions{Argon2: testArgon2}
	var err error
	if plain != nil {
		src = bytes.NewReader(plain)
		_, err = Create(p, size, k, src, o)
	} else {
		_, err = Create(p, size, k, nil, o)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func openStore(t testing.TB, path string, k *snapshot.Key) *Store {
	t.Helper()
	s, err := Open(path, k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type keyCase struct{ k *snapshot.Key }

// memFile is a file in memory (memfd) holding b, for tests that edit an
// image thousands of times.
func memFile(t testing.TB, b []byte) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("diskcrypt-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:diskcrypt-test")
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return f
}
