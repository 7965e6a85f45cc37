package emul

import "testing"

type regDev struct{ last uint32 }

func (d *regDev) In(port uint16, size int) uint32     { return uint32(port) }
func (d *regDev) Out(port uint16, size int, v uint32) { d.last = v }

func TestBus(t *testing.T) {
	var b Bus
	d := &regDev{}
	if err := b.Register("a", 0x3f8, 0x3ff, d); err != nil {
		t.Fatal(err)
	}
	if err := b.Register("b", 0x3fc, 0x400, d); err == nil {
		t.Fatal("overlap accepted")
	}
	if got := b.In(0x3fa, 1); got != 0x3fa {
		t.Errorf("In = %#x", got)
	}
	if got := b.In(0x3f7, 1); got != 0xff {
		t.Errorf("unclaimed byte In = %#x", got)
	}
	if got := b.In(0x400, 2); got != 0xffff {
		t.Errorf("unclaimed word In = %#x", got)
	}
	b.Out(0x3ff, 1, 7)
	if d.last != 7 {
		t.Error("Out not delivered")
	}
}
