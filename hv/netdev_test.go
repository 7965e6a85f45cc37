package hv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/mm"
)

// TestNICs: NICs go after the disks, one window and line each, attach to
// their segments with a derived or given MAC, are listed with the switch's
// counters, leave their segments when the VM stops, and are refused where
// hv cannot place them.
func TestNICs(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	budget := mm.NewBudget(1 << 30)
	sw := netswitch.New()
	given := netswitch.MAC{0x02, 0, 0, 0, 0, 7}
	vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: cpu.ModeTrap, Budget: budget, Name: "web",
		Cmdline: "console=ttyS0", Disks: []Disk{{Path: img}}, Switch: sw,
		NICs: []NIC{{Segment: "front"}, {Segment: "back", MAC: given}}})
	if err != nil {
		t.Fatal(err)
	}
	want := "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 virtio_mmio.device=4K@0xd0002000:10"
	if vm.cfg.Cmdline != want {
		t.Errorf("command line %q, want %q", vm.cfg.Cmdline, want)
	}
	var got []NICInfo
	for _, d := range vm.MMIODevices() {
		if d.Net != nil {
			got = append(got, *d.Net)
			if !strings.HasPrefix(d.Name, "virtio-net ") {
				t.Errorf("NIC named %q", d.Name)
			}
		}
	}
	wantNICs := []NICInfo{{Segment: "front", MAC: netswitch.DeriveMAC("web", 0)}, {Segment: "back", MAC: given}}
	if d := cmp.Diff(wantNICs, got); d != "" {
		t.Errorf("NICs (-want +got):\n%s", d)
	}
	segs := sw.Segments()
	if len(segs) != 2 || !cmp.Equal(segs[0].Ports, []string{"web/net1"}) || !cmp.Equal(segs[1].Ports, []string{"web/net0"}) {
		t.Errorf("segments %+v", segs)
	}
	// The given MAC is taken on back: a second VM asking for it is
	// refused, and its disk is closed and memory released.
	if _, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: cpu.ModeTrap, Budget: budget, Name: "other",
		Disks: []Disk{{Path: img}}, Switch: sw, NICs: []NIC{{Segment: "back", MAC: given}}}); err == nil || !strings.Contains(err.Error(), "already web/net1's") {
		t.Errorf("a MAC taken on its segment: %v", err)
	}
	if st := vm.Run(); st.Code != 42 {
		t.Errorf("status %+v", st)
	}
	for _, s := range sw.Segments() {
		if len(s.Ports) != 0 {
			t.Errorf("segment %s still has ports %v after the VM stopped", s.Name, s.Ports)
		}
	}
	if budget.Reserved() != 0 {
		t.Errorf("memory not released: %d", budget.Reserved())
	}

	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"pv-too-many", Config{Mode: cpu.ModePV, Switch: sw, Disks: make([]Disk, 16), NICs: []NIC{{Segment: "a"}}}, "17 virtio devices: at most 16 slots"},
		{"no-switch", Config{Mode: cpu.ModeTrap, NICs: []NIC{{Segment: "a"}}}, "NICs need a switch"},
		{"bad-segment", Config{Mode: cpu.ModeTrap, Switch: sw, NICs: []NIC{{Segment: "a b"}}}, `segment "a b"`},
		{"too-many", Config{Mode: cpu.ModeTrap, Switch: sw, Disks: []Disk{{Path: img}, {Path: img}},
			NICs: []NIC{{Segment: "a"}, {Segment: "b"}, {Segment: "c"}, {Segment: "d"}}}, "6 virtio devices: at most 5"},
		{"memory-over-windows", Config{Mode: cpu.ModeTrap, MemBytes: 4 << 30, Switch: sw, NICs: []NIC{{Segment: "a"}}}, "--mem 3328M or less"},
		{"multicast-mac", Config{Mode: cpu.ModeTrap, Switch: sw, NICs: []NIC{{Segment: "a", MAC: netswitch.MAC{1, 0, 0x5e, 0, 0, 1}}}}, "not a unicast address"},
	} {
		if tc.cfg.MemBytes == 0 {
			tc.cfg.MemBytes = 16 << 20
		}
		tc.cfg.Kernel, tc.cfg.Budget = elfImage(helloGuest), budget
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if budget.Reserved() != 0 {
			t.Errorf("%s: memory left reserved: %d", tc.name, budget.Reserved())
		}
	}
}
