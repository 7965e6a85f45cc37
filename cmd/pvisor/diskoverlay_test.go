package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/overlay"
	"github.com/pvisor/pvisor/hv/virtio"
)

// TestDiskFlatten: pvisor disk flatten writes the base with the overlay's
// clusters over it, and overlay-info counts them; neither file changes.
func TestDiskFlatten(t *testing.T) {
	dir := t.TempDir()
	base, ovl, out := filepath.Join(dir, "base.img"), filepath.Join(dir, "a.ovl"), filepath.Join(dir, "flat.img")
	want := bytes.Repeat([]byte("base"), 64<<10) // 256 KiB
	os.WriteFile(base, want, 0o600)
	f, _ := os.Open(base)
	bs, _ := virtio.NewFileStore(f)
	s, err := overlay.Open(ovl, bs, overlay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := bytes.Repeat([]byte{7}, 1024)
	s.WriteAt(p, 100<<10)
	want = bytes.Clone(want)
	copy(want[100<<10:], p)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ovlBefore, _ := os.ReadFile(ovl)
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"disk", "overlay-info", base, ovl}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "cluster size 65536, 1 clusters") {
		t.Errorf("disk info: %d %q %q", code, stdout.String(), stderr.String())
	}
	if code := dispatch([]string{"disk", "flatten", base, ovl, out}, &stdout, &stderr); code != 0 {
		t.Fatalf("disk flatten: %d %s", code, stderr.String())
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Error("the flattened disk is not the base with the overlay's write")
	}
	if b, _ := os.ReadFile(ovl); !bytes.Equal(b, ovlBefore) {
		t.Error("flatten changed the overlay")
	}
	stderr.Reset()
	if code := dispatch([]string{"disk", "flatten", base, ovl, out}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "does not exist yet") {
		t.Errorf("flatten over an existing file: %d %q", code, stderr.String())
	}
	stderr.Reset()
	if code := dispatch([]string{"disk", "flatten", out, ovl, filepath.Join(dir, "x")}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "not this one") {
		t.Errorf("flatten over another base: %d %q", code, stderr.String())
	}
}
