package virtio

import (
	"bytes"
	"testing"
)

func TestRngFills(t *testing.T) {
	tests := []struct {
		name string
		in   []uint32
		want uint32 // used len
	}{
		{"one buffer", []uint32{64}, 64},
		{"several buffers", []uint32{1, 31, 4096}, 4128},
		{"capped at 64 KiB", []uint32{48 << 10, 48 << 10}, 64 << 10},
		{"empty buffer", []uint32{0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, Rng{}, allRing, 16, Options{})
			n1, got1 := r.do(nil, tt.in)
			n2, got2 := r.do(nil, tt.in)
			if n1 != tt.want || n2 != tt.want {
				t.Fatalf("used len %d, %d; want %d", n1, n2, tt.want)
			}
			a, b := bytes.Join(got1, nil)[:n1], bytes.Join(got2, nil)[:n2]
			if n1 >= 16 && (bytes.Equal(a, b) || bytes.Count(a, []byte{0}) > len(a)/8) {
				t.Fatalf("two requests got %x... and %x...: not random", a[:16], b[:16])
			}
			if rest := bytes.Join(got1, nil)[n1:]; bytes.Count(rest, []byte{0}) != len(rest) {
				t.Fatalf("rng wrote beyond the used length it reported")
			}
		})
	}
}

func TestRngRefusesReadableBuffers(t *testing.T) {
	r := newRig(t, Rng{}, allRing, 16, Options{})
	r.drv.add([][]byte{{1, 2, 3}}, []uint32{8})
	r.dev.Notify(0)
	if err := r.broken(); err != errRngReadable {
		t.Fatalf("error %v, want %v", err, errRngReadable)
	}
}
