package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// dirTree writes the guest's tree into a directory on the host, for
// mke2fs -d. Like the archive writer, it refuses names that leave the tree
// and adds missing parents with mode 0755; errors are sticky. Device nodes
// are left out: a kernel that mounts its root from a disk mounts devtmpfs on
// /dev itself (CONFIG_DEVTMPFS_MOUNT) before init runs.
type dirTree struct {
	root string
	err  error
}

// newDirTree creates dir, which must not exist yet, so that nothing stale
// from an earlier tree ends up in the image.
func newDirTree(dir string) (*dirTree, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("-dir: %w (remove it first)", err)
	}
	return &dirTree{root: dir}, nil
}

// path maps an entry name to its place under the root.
func (d *dirTree) path(name string) (string, error) {
	n := filepath.Clean("/" + name)
	if n == "/" || strings.Contains(name, "\x00") {
		return "", fmt.Errorf("bad entry name %q", name)
	}
	p := filepath.Join(d.root, n)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	return p, nil
}

func (d *dirTree) do(name string, f func(p string) error) error {
	if d.err != nil {
		return d.err
	}
	p, err := d.path(name)
	if err == nil {
		err = f(p)
	}
	if err != nil {
		d.err = fmt.Errorf("%s: %w", name, err)
	}
	return d.err
}

func (d *dirTree) AddDir(name string, mode fs.FileMode) error {
	return d.do(name, func(p string) error {
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		// Chmod, not Mkdir's mode, so that the umask does not apply and
		// the sticky bit of /tmp survives.
		return os.Chmod(p, mode.Perm()|mode&fs.ModeSticky)
	})
}

func (d *dirTree) AddFile(name string, mode fs.FileMode, data []byte) error {
	return d.do(name, func(p string) error {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
		return os.Chmod(p, mode.Perm())
	})
}

func (d *dirTree) AddSymlink(name, target string) error {
	return d.do(name, func(p string) error { return os.Symlink(target, p) })
}

func (d *dirTree) AddCharDev(name string, mode fs.FileMode, major, minor uint32) error {
	return d.err
}

func (d *dirTree) Close() error { return d.err }
