package netswitch

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestUplinkRules: an uplink carries many source addresses, which the
// segment learns, but never a VM port's address or a group address, and
// never beyond its segment.
func TestUplinkRules(t *testing.T) {
	s := New()
	vm := attach(t, s, "A", 1)
	other := attach(t, s, "B", 2)
	up, err := s.AttachUplink("A", "up", 0)
	if err != nil {
		t.Fatal(err)
	}
	hostX, hostY := MAC{0x0a, 0, 0, 0, 0, 0x10}, MAC{0x0a, 0, 0, 0, 0, 0x11}
	up.Send(frame(broadcast, hostX, 46, 1)) // the segment learns X and Y behind the uplink
	up.Send(frame(broadcast, hostY, 46, 2))
	if n := got(vm, other, up); !cmp.Equal(n, []int{2, 0, 0}) {
		t.Fatalf("uplink broadcasts reached %v (vm, other segment, uplink), want the VM's port only", n)
	}
	vm.Send(frame(hostX, mac(1), 46, 3))
	if n := got(vm, other, up); !cmp.Equal(n, []int{0, 0, 1}) {
		t.Fatalf("unicast to a host behind the uplink reached %v, want the uplink", n)
	}
	// The host side may not claim the VM's address, nor send from a
	// group address; neither is delivered or learned.
	for _, src := range []MAC{mac(1), broadcast, {}} {
		up.Send(frame(broadcast, src, 46, 4))
	}
	if n := got(vm, other, up); !cmp.Equal(n, []int{0, 0, 0}) {
		t.Fatalf("spoofed uplink frames reached %v", n)
	}
	if st := up.Stats(); st.SpoofDrops != 3 {
		t.Errorf("uplink: %d spoof drops, want 3", st.SpoofDrops)
	}
	hostY2 := MAC{0x0a, 0, 0, 0, 0, 0x12}
	up.Send(frame(mac(1), hostY2, 46, 5))
	if n := got(vm, other, up); !cmp.Equal(n, []int{1, 0, 0}) {
		t.Fatalf("uplink unicast to the VM reached %v", n)
	}
	if segs := s.Segments(); !cmp.Equal(segs[0].Ports, []string{"A/p1", "up"}) {
		t.Errorf("segment A's ports %v", segs[0].Ports)
	}
}
