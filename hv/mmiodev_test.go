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
		{"pv-too-many", Config{Mode: cpu.ModePV, MemBytes: 16 << 20, Disks: make([]Disk, 16), RNG: true}, "17 virtio devices: at most 16 slots"},
		{"too-many", Config{Mode: cpu.ModeTrap, MemBytes: 16 << 20, Disks: six}, "6 virtio devices: at most 5"},
		{"too-many-rng", Config{Mode: cpu.ModeTrap, MemBytes: 16 << 20, Disks: six[:5], RNG: true}, "6 virtio devices: at most 5"},
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

// TestInventory: a VM lists every device it has with its transport, and
// a pv-mode VM given no device has none at all (minimal devices).
func TestInventory(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	budget := mm.NewBudget(1 << 30)
	for _, tc := range []struct {
		mode  cpu.Mode
		disks []Disk
		rng   bool
		want  []string // substrings, in order
		n     int
	}{
		{cpu.ModePV, nil, false, nil, 0},
		{cpu.ModePV, []Disk{{Path: img}}, true, []string{"virtio-blk", "slot 0 (hypercall transport)", "virtio-rng", "slot 1 (hypercall transport)"}, 2},
		{cpu.ModeTrap, nil, false, []string{"legacy-pc pic1", "legacy-pc com1   0x0003f8-0x0003ff (port I/O)"}, 11},
		{cpu.ModeHWAssist, []Disk{{Path: img}}, false, []string{"legacy-pc pic1", "legacy-pc com1", "virtio-blk 0 mmio 0xd0000000-0xd0000fff irq 5 (virtio-mmio)"}, 12},
	} {
		vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: tc.mode, Budget: budget,
			Disks: tc.disks, RNG: tc.rng})
		if err != nil {
			t.Fatal(err)
		}
		inv := vm.Inventory()
		all := strings.Join(inv, "\n")
		if len(inv) != tc.n {
			t.Errorf("%v: %d devices, want %d:\n%s", tc.mode, len(inv), tc.n, all)
		}
		rest := all
		for _, w := range tc.want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Errorf("%v: no %q (in order) in:\n%s", tc.mode, w, all)
				break
			}
			rest = rest[i+len(w):]
		}
		vm.Run()
	}
}
