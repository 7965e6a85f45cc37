package netswitch

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// TAP connects a segment to a Linux TAP device: frames the host's kernel
// sends on the interface enter the segment through an uplink port, and
// frames the segment delivers to that port leave through the interface.
// Two goroutines move them; Close stops both and detaches the port.
type TAP struct {
	Name string // the interface, as the kernel named it
	port *Port
	f    *os.File
	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// ConnectTAP opens (creating it if needed) the TAP interface ifname and
// attaches it to segment as an uplink. It needs CAP_NET_ADMIN (or an
// interface made persistent for this user beforehand).
func (s *Switch) ConnectTAP(segment, ifname string) (*TAP, error) {
	f, name, err := openTAP(ifname)
	if err != nil {
		return nil, err
	}
	p, err := s.AttachUplink(segment, "tap:"+name, 0)
	if err != nil {
		f.Close()
		return nil, err
	}
	t := &TAP{Name: name, port: p, f: f, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	p.SetWake(func() {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	})
	t.wg.Add(2)
	go t.fromHost()
	go t.toHost()
	return t, nil
}

// openTAP opens /dev/net/tun as TAP interface ifname, without packet
// information (each read or write is one Ethernet frame), non-blocking so
// that Close ends a pending read.
func openTAP(ifname string) (*os.File, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("TAP %s: /dev/net/tun: %w", ifname, err)
	}
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("TAP %q: %w (want at most 15 bytes)", ifname, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("TAP %s: TUNSETIFF: %w (needs CAP_NET_ADMIN, or a persistent TAP owned by this user)", ifname, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), ifr.Name(), nil
}

// Port is the TAP's uplink port (for its counters).
func (t *TAP) Port() *Port { return t.port }

// fromHost reads the frames the host sends and carries them into the
// segment; the port drops frames of a bad size or source.
func (t *TAP) fromHost() {
	defer t.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, err := t.f.Read(buf)
		if err != nil {
			return // closed (Close), or the interface was removed
		}
		t.port.Send(buf[:n])
	}
}

// toHost writes the frames the segment delivers to the uplink to the host.
func (t *TAP) toHost() {
	defer t.wg.Done()
	buf := make([]byte, MaxFrame)
	for {
		select {
		case <-t.stop:
			return
		case <-t.kick:
		}
		for {
			n, ok := t.port.Receive(buf)
			if !ok {
				break
			}
			t.f.Write(buf[:n]) // a full interface queue drops, as a wire would
		}
	}
}

// Close detaches the uplink, stops its goroutines and closes the TAP.
func (t *TAP) Close() error {
	t.port.SetWake(nil)
	t.port.Detach()
	close(t.stop)
	err := t.f.Close()
	t.wg.Wait()
	return err
}
