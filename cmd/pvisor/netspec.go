package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hypercall"
)

// netOptions are the options of a --net value after segment=; in a --vm
// spec they follow net=segment=NAME as items of their own.
var netOptions = []string{"mac", "bw", "ops"}

// parseNIC parses a --net value: segment=NAME[,mac=MAC][,bw=BYTES/s][,ops=N/s].
// bw takes a size (K, M or G suffix) per second, the bytes of frames the
// VM may send; ops the frames it may send per second; both optional
// ("/s" may be left out).
func parseNIC(v string) (hv.NIC, error) {
	var n hv.NIC
	seen := map[string]bool{}
	for _, item := range strings.Split(v, ",") {
		key, val, ok := strings.Cut(item, "=")
		if !ok {
			return n, fmt.Errorf("--net %s: %q is not key=value: want segment=NAME[,mac=MAC][,bw=BYTES/s][,ops=N/s]", v, item)
		}
		if seen[key] {
			return n, fmt.Errorf("--net %s: %s given twice", v, key)
		}
		seen[key] = true
		switch key {
		case "segment":
			if err := netswitch.CheckSegmentName(val); err != nil {
				return n, fmt.Errorf("--net %s: %v", v, err)
			}
			n.Segment = val
		case "mac":
			m, err := netswitch.ParseMAC(val)
			if err != nil {
				return n, fmt.Errorf("--net %s: %v", v, err)
			}
			n.MAC = m
		case "bw":
			b, err := parseSize(strings.TrimSuffix(val, "/s"))
			if err != nil {
				return n, fmt.Errorf("--net %s: bw: %v (bytes per second)", v, err)
			}
			n.Limits.BytesPerSec = b
		case "ops":
			o, err := strconv.ParseUint(strings.TrimSuffix(val, "/s"), 10, 64)
			if err != nil || o == 0 {
				return n, fmt.Errorf("--net %s: ops %q: want a positive number of frames per second, such as ops=10000/s", v, val)
			}
			n.Limits.OpsPerSec = o
		default:
			return n, fmt.Errorf("--net %s: unknown key %q: want segment, mac, bw or ops", v, key)
		}
	}
	if n.Segment == "" {
		return n, fmt.Errorf("--net %s: no segment: want segment=NAME first", v)
	}
	return n, nil
}

// uplink is a --uplink value: a segment and the TAP interface that
// connects it to the host.
type uplink struct{ segment, tap string }

// parseUplink parses a --uplink value: segment=NAME,tap=IFNAME.
func parseUplink(v string) (uplink, error) {
	var u uplink
	for _, item := range strings.Split(v, ",") {
		key, val, ok := strings.Cut(item, "=")
		switch {
		case !ok:
			return u, fmt.Errorf("--uplink %s: %q is not key=value: want segment=NAME,tap=IFNAME", v, item)
		case key == "segment" && u.segment == "":
			if err := netswitch.CheckSegmentName(val); err != nil {
				return u, fmt.Errorf("--uplink %s: %v", v, err)
			}
			u.segment = val
		case key == "tap" && u.tap == "":
			if err := checkIfname(val); err != nil {
				return u, fmt.Errorf("--uplink %s: %v", v, err)
			}
			u.tap = val
		default:
			return u, fmt.Errorf("--uplink %s: unexpected %q: want segment=NAME,tap=IFNAME, each once", v, item)
		}
	}
	if u.segment == "" || u.tap == "" {
		return u, fmt.Errorf("--uplink %s: want segment=NAME,tap=IFNAME", v)
	}
	return u, nil
}

// checkIfname is the rule for a TAP interface's name: 1 to 15 letters,
// digits, '.', '_' or '-' (Linux's IFNAMSIZ less the NUL), not "." or "..".
func checkIfname(name string) error {
	ok := name != "" && len(name) <= 15 && name != "." && name != ".."
	for _, c := range name {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-", c))
	}
	if !ok {
		return fmt.Errorf("tap %q: want an interface name of 1 to 15 letters, digits, '.', '_' or '-'", name)
	}
	return nil
}

// checkNICs validates the NICs of all VMs together: NICs need a virtio-mmio
// mode and a window each (with the disks), and two NICs of one segment
// never share a MAC (given or derived).
func checkNICs(specs []vmSpec) error {
	type key struct {
		seg string
		mac netswitch.MAC
	}
	owner := map[key]string{}
	for _, s := range specs {
		if len(s.nics) == 0 {
			continue
		}
		n := len(s.disks) + len(s.nics)
		if s.rng {
			n++
		}
		if max := len(hv.MMIOIRQs); s.mode != cpu.ModePV && n > max {
			return fmt.Errorf("%s: %d virtio devices: at most %d per VM in %v mode (virtio-mmio)", s.name, n, max, s.mode)
		}
		if max := hypercall.VirtioSlots; n > max {
			return fmt.Errorf("%s: %d virtio devices: at most %d slots per VM in pv mode", s.name, n, max)
		}
		for i, n := range s.nics {
			m := n.MAC
			if m.IsZero() {
				m = netswitch.DeriveMAC(s.name, i)
			}
			k := key{n.Segment, m}
			who := fmt.Sprintf("%s's NIC %d", s.name, i)
			if o, ok := owner[k]; ok {
				return fmt.Errorf("%s and %s both have MAC %s on segment %s: give one of them another mac=", o, who, m, n.Segment)
			}
			owner[k] = who
		}
	}
	return nil
}

// printSegments prints each segment's counters (for --stats).
func printSegments(w io.Writer, sw *netswitch.Switch) {
	for _, s := range sw.Segments() {
		ports := "no port attached now"
		if len(s.Ports) > 0 {
			ports = strings.Join(s.Ports, ", ")
		}
		fmt.Fprintf(w, "segment %s (%s): tx %d frames %d bytes, rx %d frames %d bytes, %d spoofed, %d queue-full, %d bad, %d throttled\n",
			s.Name, ports, s.TxFrames, s.TxBytes, s.RxFrames, s.RxBytes, s.SpoofDrops, s.FullDrops, s.BadDrops, s.Throttled)
	}
}
