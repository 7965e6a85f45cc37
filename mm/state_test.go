package mm

import (
	"bytes"
	"encoding/gob"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func encodeMem(t *testing.T, st MemState) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(st); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestMemStateRoundTrip: holes and target survive save, gob, restore into
// a fresh reservation and save again byte for byte, with the same
// accounting and the same frames populated.
func TestMemStateRoundTrip(t *testing.T) {
	b := NewBudget(64 << 20)
	a, err := b.Reserve(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	if _, err := a.BalloonOut(FrameRange{0, 1}, FrameRange{10, 5}, FrameRange{63, 2}, FrameRange{2047, 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetTarget(6 << 20); err != nil {
		t.Fatal(err)
	}
	st, err := a.Save()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Holes) != 4 {
		t.Fatalf("holes %+v", st.Holes)
	}
	enc := encodeMem(t, st)
	var dec MemState
	if err := gob.NewDecoder(bytes.NewReader(enc)).Decode(&dec); err != nil {
		t.Fatal(err)
	}
	c, err := b.Reserve(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if err := c.Restore(dec); err != nil {
		t.Fatal(err)
	}
	st2, _ := c.Save()
	if d := cmp.Diff(st, st2); d != "" {
		t.Fatalf("(-saved +restored):\n%s", d)
	}
	if !bytes.Equal(enc, encodeMem(t, st2)) {
		t.Fatal("the second save encodes differently")
	}
	if a.Stats() != c.Stats() {
		t.Fatalf("accounting %+v, restored %+v", a.Stats(), c.Stats())
	}
	for gfn := uint64(0); gfn < a.Frames(); gfn++ {
		if a.Populated(gfn) != c.Populated(gfn) {
			t.Fatalf("gfn %#x populated %v, restored %v", gfn, a.Populated(gfn), c.Populated(gfn))
		}
	}
}

// TestMemStateRestoreRefuses: impossible bookkeeping is refused and the
// reservation stays whole.
func TestMemStateRestoreRefuses(t *testing.T) {
	b := NewBudget(64 << 20)
	r, err := b.Reserve(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	for _, tc := range []struct {
		name string
		st   MemState
		want string
	}{
		{"size", MemState{Size: 4 << 20, Target: 4 << 20}, "reservation"},
		{"target above", MemState{Size: 8 << 20, Target: 9 << 20}, "balloon target"},
		{"target not whole frames", MemState{Size: 8 << 20, Target: 100}, "balloon target"},
		{"empty hole", MemState{Size: 8 << 20, Target: 8 << 20, Holes: []FrameRange{{5, 0}}}, "empty or beyond"},
		{"hole beyond", MemState{Size: 8 << 20, Target: 8 << 20, Holes: []FrameRange{{2047, 2}}}, "empty or beyond"},
		{"hole wraps", MemState{Size: 8 << 20, Target: 8 << 20, Holes: []FrameRange{{1, ^uint64(0)}}}, "empty or beyond"},
		{"overlap", MemState{Size: 8 << 20, Target: 8 << 20, Holes: []FrameRange{{5, 5}, {7, 1}}}, "overlaps"},
		{"adjacent", MemState{Size: 8 << 20, Target: 8 << 20, Holes: []FrameRange{{5, 5}, {10, 1}}}, "overlaps"},
		{"unsorted", MemState{Size: 8 << 20, Target: 8 << 20, Holes: []FrameRange{{20, 1}, {5, 1}}}, "overlaps"},
	} {
		if err := r.Restore(tc.st); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if s := r.Stats(); s.Resident != 8<<20 || s.Target != 8<<20 {
			t.Errorf("%s: a refused restore changed the reservation: %+v", tc.name, s)
		}
	}
}
