package hv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hv/virtio"
	"github.com/pvisor/pvisor/mm"
)

// TestOperatorDeviceVerbs: the operator's hot-plug verbs fill slots of a
// pv VM and are refused elsewhere; limits change on both transports and
// reach the device (a disk) or the switch port (a NIC); bad device numbers
// are refused.
func TestOperatorDeviceVerbs(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	budget := mm.NewBudget(1 << 30)
	sw := netswitch.New()
	pv, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: cpu.ModePV, Budget: budget, Name: "p", Switch: sw})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := pv.AttachDisk(Disk{Path: img, ReadOnly: true, Limits: virtio.Limits{OpsPerSec: 100}})
	if err != nil || ds != 0 {
		t.Fatalf("AttachDisk: slot %d, %v", ds, err)
	}
	ns, err := pv.AttachNIC(NIC{Segment: "lab", Limits: virtio.Limits{BytesPerSec: 1 << 20}})
	if err != nil || ns != 1 {
		t.Fatalf("AttachNIC: slot %d, %v", ns, err)
	}
	if l, _ := pv.pv.slots[ds].Load().t.Device().Limits(); l.OpsPerSec != 100 {
		t.Errorf("hot-plugged disk limits %+v, want 100 ops/s", l)
	}
	if err := pv.SetDeviceLimits(ds, virtio.Limits{BytesPerSec: 5 << 20}); err != nil {
		t.Fatal(err)
	}
	if l, _ := pv.pv.slots[ds].Load().t.Device().Limits(); l.BytesPerSec != 5<<20 || l.OpsPerSec != 0 {
		t.Errorf("disk limits %+v after SetDeviceLimits", l)
	}
	if err := pv.SetDeviceLimits(ns, virtio.Limits{OpsPerSec: 7}); err != nil {
		t.Fatal(err)
	}
	if l := pv.pv.slots[ns].Load().port.Limits(); l.OpsPerSec != 7 || l.BytesPerSec != 0 {
		t.Errorf("NIC port limits %+v after SetDeviceLimits", l)
	}
	for _, d := range []int{-1, 2, 16, 1 << 30} {
		if err := pv.SetDeviceLimits(d, virtio.Limits{}); err == nil {
			t.Errorf("SetDeviceLimits(%d) on an empty or impossible slot succeeded", d)
		}
	}
	if _, err := pv.AttachNIC(NIC{Segment: "a b"}); err == nil {
		t.Error("a NIC on a bad segment name attached")
	}
	if _, err := pv.AttachDisk(Disk{Path: img + ".none"}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("AttachDisk of a missing image: %v", err)
	}
	if err := pv.EjectDevice(ns, true); err != nil {
		t.Fatal(err)
	}
	if got := sw.Segments(); len(got) > 1 || len(got) == 1 && len(got[0].Ports) != 0 {
		t.Errorf("segments after the NIC's forced ejection: %+v, want its port detached", got)
	}
	pv.Run()

	trap, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: cpu.ModeTrap, Budget: budget, Name: "t", Switch: sw,
		Disks: []Disk{{Path: img}}, RNG: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trap.AttachDisk(Disk{Path: img}); err == nil || !strings.Contains(err.Error(), "pv mode") {
		t.Errorf("AttachDisk in trap mode: %v, want a refusal naming pv mode", err)
	}
	if _, err := trap.AttachNIC(NIC{Segment: "lab"}); err == nil {
		t.Error("AttachNIC in trap mode succeeded")
	}
	if err := trap.SetDeviceLimits(0, virtio.Limits{OpsPerSec: 3}); err != nil {
		t.Fatal(err)
	}
	if l, _ := trap.mmio[0].t.Device().Limits(); l.OpsPerSec != 3 {
		t.Errorf("mmio disk limits %+v", l)
	}
	if err := trap.SetDeviceLimits(1, virtio.Limits{OpsPerSec: 3}); err == nil {
		t.Error("limits on the rng accepted")
	}
	if err := trap.SetDeviceLimits(2, virtio.Limits{}); err == nil {
		t.Error("limits on a window that does not exist accepted")
	}
	trap.Run()
	if budget.Reserved() != 0 {
		t.Errorf("memory not released: %d", budget.Reserved())
	}
}
