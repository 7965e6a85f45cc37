package netswitch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTAPUplink connects a segment to a TAP interface inside a network
// namespace of the test's own, and has a port of the segment ask the
// host's kernel by ARP for the interface's address: the kernel's reply
// comes back through the TAP to that port, and only to it.
func TestTAPUplink(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2) to configure the TAP interface")
	}
	type result struct {
		err  error
		skip string
	}
	done := make(chan result, 1)
	go func() {
		// This goroutine's thread moves to a new network namespace and
		// stays locked, so that it is discarded when the goroutine ends.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{skip: "cannot make a network namespace (unshare CLONE_NEWNET: " + err.Error() + "): needs CAP_SYS_ADMIN"}
			return
		}
		done <- result{err: tapARP(t)}
	}()
	r := <-done
	if r.skip != "" {
		t.Skip(r.skip)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
}

// tapARP runs on a thread in the test's network namespace.
func tapARP(t *testing.T) error {
	s := New()
	tap, err := s.ConnectTAP("lan", "pvtap0")
	if err != nil {
		return err
	}
	defer tap.Close()
	for _, args := range [][]string{{"link", "set", "pvtap0", "up"}, {"addr", "add", "10.9.0.1/24", "dev", "pvtap0"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return errors.New("ip " + args[0] + ": " + err.Error() + ": " + string(out))
		}
	}
	// Its address, as this namespace's ip sees it (sysfs shows the
	// mount's namespace, not the thread's).
	out, err := exec.Command("ip", "-br", "link", "show", "pvtap0").Output()
	if err != nil {
		return errors.New("ip link show: " + err.Error())
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		return errors.New("ip link show: " + string(out))
	}
	hw := fields[2]
	vm, err := s.Attach("lan", PortConfig{Owner: "vm", MAC: mac(2)})
	if err != nil {
		return err
	}
	bystander, err := s.Attach("other", PortConfig{Owner: "other", MAC: mac(3)})
	if err != nil {
		return err
	}
	// ARP request (RFC 826): who has 10.9.0.1? Tell 10.9.0.2 (the VM).
	req := frame(broadcast, mac(2), 28, 0)
	binary.BigEndian.PutUint16(req[12:], 0x0806)
	a := req[14:]
	binary.BigEndian.PutUint16(a[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	m := mac(2)
	copy(a[8:], m[:])
	copy(a[14:], []byte{10, 9, 0, 2})
	copy(a[24:], []byte{10, 9, 0, 1})
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, MaxFrame)
	for time.Now().Before(deadline) {
		vm.Send(req)
		wait := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(wait) {
			n, ok := vm.Receive(buf)
			if !ok {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			f := buf[:n]
			if n >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2 &&
				bytes.Equal(f[28:32], []byte{10, 9, 0, 1}) && bytes.Equal(f[0:6], m[:]) {
				if got := MAC(f[22:28]).String(); got != hw {
					t.Errorf("ARP reply says 10.9.0.1 is at %s, the interface is %s", got, hw)
				}
				if bystander.Waiting() {
					t.Errorf("a port of another segment received the host's frames")
				}
				if st := tap.Port().Stats(); st.TxFrames == 0 || st.RxFrames == 0 {
					t.Errorf("uplink counters %+v: want frames both ways", st)
				}
				return nil
			}
		}
	}
	return errors.New("no ARP reply from the host's kernel through the TAP within 10 s")
}
