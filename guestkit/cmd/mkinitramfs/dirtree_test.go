package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestDirTree(t *testing.T) {
	root := filepath.Join(t.TempDir(), "tree")
	d, err := newDirTree(root)
	if err != nil {
		t.Fatal(err)
	}
	g := &guestTree{busybox: []byte("bb"), applets: []string{"bin/sh", "usr/bin/awk"}, init: []byte("#!/bin/sh\n")}
	if err := g.write(d); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{
		"bin/busybox": 0o755, "init": 0o755, "etc/passwd": 0o644,
		"tmp": fs.ModeDir | fs.ModeSticky | 0o777, "root": fs.ModeDir | 0o700,
	} {
		fi, err := os.Lstat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSticky); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	for _, a := range g.applets {
		if l, err := os.Readlink(filepath.Join(root, a)); err != nil || l != "/bin/busybox" {
			t.Errorf("%s -> %q, %v", a, l, err)
		}
	}
	// Device nodes are the kernel's devtmpfs' business on a disk root.
	if _, err := os.Lstat(filepath.Join(root, "dev/console")); !os.IsNotExist(err) {
		t.Errorf("dev/console: %v, want it absent", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "init")); string(b) != "#!/bin/sh\n" {
		t.Errorf("init holds %q", b)
	}

	// A name cannot leave the tree, and an existing directory is refused.
	if err := d.AddFile("../../escape", 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "escape")); err != nil {
		t.Errorf("../../escape did not land inside the tree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escape")); !os.IsNotExist(err) {
		t.Error("../../escape was written outside the tree")
	}
	if _, err := newDirTree(root); err == nil {
		t.Error("newDirTree of an existing directory succeeded")
	}
}
