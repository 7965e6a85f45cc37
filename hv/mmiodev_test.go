package hv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
)

// TestDisks: disks are placed one window and one PIC line each, named on
// the command line, listed, and refused where hv cannot place them.
func TestDisks(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	budget := mm.NewBudget(1 << 30)
	vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: cpu.ModeHWAssist, Budget: budget,
		Cmdline: "console=ttyS0", Disks: []Disk{{Path: img}, {Path: img, ReadOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	want := "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6"
	if vm.cfg.Cmdline != want {
		t.Errorf("command line %q, want %q", vm.cfg.Cmdline, want)
	}
	var names []string
	for _, d := range vm.MMIODevices() {
		names = append(names, d.String())
	}
	if got := strings.Join(names, "; "); got != "virtio-blk 0 mmio 0xd0000000-0xd0000fff irq 5; virtio-blk 1 mmio 0xd0001000-0xd0001fff irq 6" {
		t.Errorf("devices: %s", got)
	}
	if st := vm.Run(); st.Code != 42 {
		t.Errorf("status %+v", st)
	}
	if budget.Reserved() != 0 {
		t.Errorf("memory not released: %d", budget.Reserved())
	}

	six := make([]Disk, 6)
	for i := range six {
		six[i] = Disk{Path: img}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"pv-mode", Config{Mode: cpu.ModePV, MemBytes: 16 << 20, Disks: []Disk{{Path: img}}}, "pv mode's hypercall transport comes later"},
		{"too-many", Config{Mode: cpu.ModeTrap, MemBytes: 16 << 20, Disks: six}, "6 disks and 0 NICs: at most 5 devices"},
		{"memory-over-windows", Config{Mode: cpu.ModeTrap, MemBytes: 4 << 30, Disks: []Disk{{Path: img}}}, "--mem 3328M or less"},
		{"missing-image", Config{Mode: cpu.ModeTrap, MemBytes: 16 << 20, Disks: []Disk{{Path: img + ".none"}}}, "no such file"},
		{"directory", Config{Mode: cpu.ModeTrap, MemBytes: 16 << 20, Disks: []Disk{{Path: filepath.Dir(img)}}}, "is a directory"},
	} {
		tc.cfg.Kernel, tc.cfg.Budget = elfImage(helloGuest), budget
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if budget.Reserved() != 0 {
			t.Errorf("%s: memory left reserved: %d", tc.name, budget.Reserved())
		}
	}
}
