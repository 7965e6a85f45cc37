package netswitch

import "testing"

// BenchmarkSendUnicast is one 1514-byte frame from one port to another
// that the segment has learned, and its receipt.
func BenchmarkSendUnicast(b *testing.B) {
	s := New()
	a, err := s.Attach("s", PortConfig{MAC: mac(1)})
	if err != nil {
		b.Fatal(err)
	}
	c, err := s.Attach("s", PortConfig{MAC: mac(2)})
	if err != nil {
		b.Fatal(err)
	}
	c.Send(frame(mac(1), mac(2), 46, 0)) // learn c
	f := frame(mac(2), mac(1), MaxFrame-14, 7)
	buf := make([]byte, MaxFrame)
	a.Receive(buf)
	b.SetBytes(MaxFrame)
	b.ReportAllocs()
	for b.Loop() {
		a.Send(f)
		if _, ok := c.Receive(buf); !ok {
			b.Fatal("frame not delivered")
		}
	}
}

// BenchmarkFlood is one broadcast frame to the seven other ports of a
// segment.
func BenchmarkFlood(b *testing.B) {
	s := New()
	var ports []*Port
	for i := range 8 {
		p, err := s.Attach("s", PortConfig{MAC: mac(byte(i + 1))})
		if err != nil {
			b.Fatal(err)
		}
		ports = append(ports, p)
	}
	f := frame(broadcast, mac(1), MaxFrame-14, 7)
	buf := make([]byte, MaxFrame)
	b.SetBytes(MaxFrame)
	b.ReportAllocs()
	for b.Loop() {
		ports[0].Send(f)
		for _, p := range ports[1:] {
			p.Receive(buf)
		}
	}
}
