package emul

import "testing"

func TestI8042Reset(t *testing.T) {
	for name, tc := range map[string]struct {
		writes [][2]uint32 // port, value
		reset  bool
	}{
		"command 0xfe":        {[][2]uint32{{0x64, 0xfe}}, true},
		"output port bit 0":   {[][2]uint32{{0x64, 0xd1}, {0x60, 0xfe}}, true},
		"output port keeps 1": {[][2]uint32{{0x64, 0xd1}, {0x60, 0xff}}, false},
		"data alone":          {[][2]uint32{{0x60, 0x00}}, false},
		"other command":       {[][2]uint32{{0x64, 0xaa}, {0x60, 0x00}}, false},
	} {
		resets := 0
		k := &I8042{OnReset: func() { resets++ }}
		if k.In(0x64, 1)&0x03 != 0 {
			t.Fatalf("%s: status shows pending data", name)
		}
		for _, w := range tc.writes {
			k.Out(uint16(w[0]), 1, w[1])
		}
		if (resets == 1) != tc.reset {
			t.Errorf("%s: %d resets, want reset=%v", name, resets, tc.reset)
		}
	}
}
