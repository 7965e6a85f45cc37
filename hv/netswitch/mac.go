package netswitch

import (
	"crypto/sha256"
	"fmt"
	"net"
	"strconv"
)

// MAC is an Ethernet address.
type MAC [6]byte

func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// Multicast says whether m is a group address (broadcast included): the
// I/G bit, the lowest bit of the first byte.
func (m MAC) Multicast() bool { return m[0]&1 != 0 }

// IsZero says whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// ParseMAC parses a port's MAC, six colon-separated hex bytes. A port's
// address must be unicast and not all zeros.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != len(m) {
		return m, fmt.Errorf("MAC %q: want six hex bytes separated by colons, such as 02:00:00:00:00:01", s)
	}
	copy(m[:], hw)
	if m.Multicast() {
		return m, fmt.Errorf("MAC %s is a multicast address (lowest bit of the first byte set): give a unicast one, such as 02:00:00:00:00:01", m)
	}
	if m.IsZero() {
		return m, fmt.Errorf("MAC %s is all zeros: give a unicast address, such as 02:00:00:00:00:01", m)
	}
	return m, nil
}

// DeriveMAC is the MAC pvisor gives NIC nic of VM vm when the operator
// gives none: the first six bytes of SHA-256("pvisor-nic\x00" vm "\x00"
// nic), made unicast and locally administered (first byte's bits 0 and 1:
// 0 and 1), so the same VM gets the same addresses in every run.
func DeriveMAC(vm string, nic int) MAC {
	h := sha256.Sum256([]byte("pvisor-nic\x00" + vm + "\x00" + strconv.Itoa(nic)))
	var m MAC
	copy(m[:], h[:])
	m[0] = m[0]&^0x01 | 0x02
	return m
}
