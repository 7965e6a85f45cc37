package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/snapshot"
)

// maxPassphraseFile bounds a --passphrase-file.
const maxPassphraseFile = 4096

// loadKey reads the snapshot key an operator named: a key file
// (snapshot.ReadKeyFile: 32 bytes, mode 0600 or 0400) or a passphrase
// file (its first line). Neither gives a nil key.
func loadKey(keyFile, passFile string) (*snapshot.Key, error) {
	switch {
	case keyFile != "" && passFile != "":
		return nil, errors.New("give --key-file or --passphrase-file, not both")
	case keyFile != "":
		return snapshot.ReadKeyFile(keyFile)
	case passFile != "":
		if err := statFile("passphrase file", passFile, maxPassphraseFile); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(passFile)
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		b = bytes.TrimSuffix(b, []byte("\r"))
		return snapshot.Passphrase(b)
	}
	return nil, nil
}

// writeSnapshotFile snapshots vm into a new file at path, mode 0600
// (writeNewFile).
func writeSnapshotFile(vm *hv.VM, path string, opt hv.SnapshotOptions) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("snapshot path %q is not absolute", path)
	}
	return writeNewFile(path, func(f *os.File) error {
		w := bufio.NewWriterSize(f, 1<<20)
		if err := vm.Snapshot(w, opt); err != nil {
			return err
		}
		return w.Flush()
	})
}

// writeNewFile makes a new file at path, mode 0600, with what fill
// writes: it is written beside path under a temporary name, synced and
// linked into place, so that path holds the whole file or nothing. An
// existing path is refused, also one created meanwhile.
func writeNewFile(path string, fill func(f *os.File) error) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s exists: remove it or pass a new path", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if err := fill(f); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Link(tmp, path); err != nil { // refuses a path created meanwhile
		os.Remove(tmp)
		return err
	}
	return os.Remove(tmp)
}

// generation formats a VM generation ID.
func generation(vm interface{ GenerationID() [16]byte }) string {
	id := vm.GenerationID()
	return hex.EncodeToString(id[:])
}
