package vclock

import (
	"bytes"
	"encoding/gob"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeHost is a host's monotonic and wall clocks, moved by hand.
type fakeHost struct {
	mu   sync.Mutex
	mono time.Duration
	wall time.Time
}

func newFakeHost() *fakeHost {
	return &fakeHost{mono: 5 * time.Hour, wall: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (f *fakeHost) Mono() time.Duration { f.mu.Lock(); defer f.mu.Unlock(); return f.mono }
func (f *fakeHost) Wall() time.Time     { f.mu.Lock(); defer f.mu.Unlock(); return f.wall }
func (f *fakeHost) Advance(d time.Duration) {
	f.mu.Lock()
	f.mono += d
	f.wall = f.wall.Add(d)
	f.mu.Unlock()
}

func (f *fakeHost) clock(p Policy) *Clock { return NewWith(p, f.Mono, f.Wall) }

// TestPolicies pauses a clock for 2 s under each policy: Frozen goes on
// from where it stopped, Live jumps by the paused span; under both the
// wall clock reads the host's date after Resume.
func TestPolicies(t *testing.T) {
	for _, tc := range []struct {
		p         Policy
		wantAfter time.Duration // guest time just after Resume
	}{{Frozen, time.Second}, {Live, 3 * time.Second}} {
		h := newFakeHost()
		c := h.clock(tc.p)
		start := h.Wall()
		if c.Now() != 0 || !c.Wall().Equal(start) {
			t.Fatalf("%v: new clock reads %v, wall %v", tc.p, c.Now(), c.Wall())
		}
		h.Advance(time.Second)
		if c.Now() != time.Second {
			t.Fatalf("%v: running clock reads %v after 1 s", tc.p, c.Now())
		}
		c.Pause()
		c.Pause() // twice is once
		h.Advance(2 * time.Second)
		if c.Now() != time.Second || !c.Paused() {
			t.Fatalf("%v: paused clock reads %v after 2 s", tc.p, c.Now())
		}
		if span := c.Resume(); span != 2*time.Second {
			t.Fatalf("%v: Resume returned a paused span of %v", tc.p, span)
		}
		if span := c.Resume(); span != 0 {
			t.Fatalf("%v: Resume of a running clock returned %v", tc.p, span)
		}
		if c.Now() != tc.wantAfter {
			t.Fatalf("%v: after Resume the clock reads %v, want %v", tc.p, c.Now(), tc.wantAfter)
		}
		if !c.Wall().Equal(h.Wall()) {
			t.Fatalf("%v: wall clock %v after Resume, host says %v", tc.p, c.Wall(), h.Wall())
		}
		h.Advance(time.Second)
		if c.Now() != tc.wantAfter+time.Second || !c.Wall().Equal(h.Wall()) {
			t.Fatalf("%v: a second after Resume: %v, wall %v (host %v)", tc.p, c.Now(), c.Wall(), h.Wall())
		}
	}
}

// TestWallFollowsHostDate: a host wall-clock step (NTP) while paused is
// picked up at Resume.
func TestWallFollowsHostDate(t *testing.T) {
	h := newFakeHost()
	c := h.clock(Frozen)
	h.Advance(time.Second)
	c.Pause()
	h.mu.Lock()
	h.wall = h.wall.Add(time.Hour)
	h.mu.Unlock()
	c.Resume()
	if !c.Wall().Equal(h.Wall()) || !c.WallBase().Equal(h.Wall().Add(-time.Second)) {
		t.Fatalf("wall %v base %v, host %v", c.Wall(), c.WallBase(), h.Wall())
	}
}

// TestMonotonic reads a real clock from several goroutines while another
// pauses and resumes it: no reader ever sees time go backwards.
func TestMonotonic(t *testing.T) {
	for _, p := range []Policy{Frozen, Live} {
		c := New(p)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan string, 4)
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				last := c.Now()
				for {
					select {
					case <-stop:
						return
					default:
					}
					now := c.Now()
					if now < last {
						errs <- (now - last).String()
						return
					}
					last = now
				}
			}()
		}
		for range 2000 {
			c.Pause()
			c.Resume()
		}
		close(stop)
		wg.Wait()
		select {
		case e := <-errs:
			t.Fatalf("%v: clock went back by %s", p, e)
		default:
		}
	}
}

func encode(t *testing.T, st ClockState) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(st); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestClockRoundTrip saves a paused clock, restores it into a fresh one
// on another host clock, saves again: the encodings are identical, and
// both clocks go on alike after Resume.
func TestClockRoundTrip(t *testing.T) {
	for _, paused := range []bool{true, false} {
		h1 := newFakeHost()
		c1 := h1.clock(Frozen)
		h1.Advance(1500 * time.Millisecond)
		c1.Pause()
		h1.Advance(time.Second)
		c1.Resume()
		h1.Advance(250 * time.Millisecond)
		if paused {
			c1.Pause()
		}
		st1 := c1.Save()
		if st1.Now != uint64(1750*time.Millisecond) || st1.Paused != paused {
			t.Fatalf("saved %+v", st1)
		}
		enc1 := encode(t, st1)
		var dec ClockState
		if err := gob.NewDecoder(bytes.NewReader(enc1)).Decode(&dec); err != nil {
			t.Fatal(err)
		}
		h2 := &fakeHost{mono: 17 * time.Minute, wall: h1.Wall().Add(time.Minute)}
		c2 := h2.clock(Frozen)
		h2.Advance(time.Hour) // the fresh clock has a history of its own
		if err := c2.Restore(dec); err != nil {
			t.Fatal(err)
		}
		st2 := c2.Save()
		if d := cmp.Diff(st1, st2); d != "" {
			t.Fatalf("paused %v: state after round trip (-saved +restored):\n%s", paused, d)
		}
		if enc2 := encode(t, st2); !bytes.Equal(enc1, enc2) {
			t.Fatalf("paused %v: encodings differ", paused)
		}
		if !c2.Wall().Equal(h2.Wall()) {
			t.Fatalf("paused %v: restored wall clock %v, host %v", paused, c2.Wall(), h2.Wall())
		}
		// Both go on alike.
		for _, step := range []time.Duration{0, time.Second, 3 * time.Millisecond} {
			h1.Advance(step)
			h2.Advance(step)
			if c1.Now() != c2.Now() {
				t.Fatalf("paused %v: after %v: original %v, restored %v", paused, step, c1.Now(), c2.Now())
			}
		}
		c1.Resume()
		c2.Resume()
		h1.Advance(time.Second)
		h2.Advance(time.Second)
		if c1.Now() != c2.Now() || c1.Paused() || c2.Paused() {
			t.Fatalf("paused %v: after Resume: original %v, restored %v", paused, c1.Now(), c2.Now())
		}
	}
}

// TestClockRestoreRefuses: a guest time beyond MaxTime is refused and
// leaves the clock as it was.
func TestClockRestoreRefuses(t *testing.T) {
	h := newFakeHost()
	c := h.clock(Frozen)
	h.Advance(time.Second)
	c.Pause()
	before := c.Save()
	for _, st := range []ClockState{
		{Now: uint64(MaxTime) + 1},
		{Now: ^uint64(0), Paused: true},
	} {
		err := c.Restore(st)
		if !errors.Is(err, ErrBadState) {
			t.Errorf("Restore(%+v) = %v, want ErrBadState", st, err)
		}
		if d := cmp.Diff(before, c.Save()); d != "" {
			t.Errorf("Restore(%+v) changed the clock:\n%s", st, d)
		}
	}
	if err := c.Restore(ClockState{Now: uint64(MaxTime)}); err != nil {
		t.Errorf("Restore at MaxTime: %v", err)
	}
}

func TestParsePolicy(t *testing.T) {
	for s, want := range map[string]Policy{"paused": Frozen, "": Frozen, "host": Live} {
		if p, err := ParsePolicy(s); err != nil || p != want {
			t.Errorf("ParsePolicy(%q) = %v, %v", s, p, err)
		}
		if s != "" && want.String() != s {
			t.Errorf("%v.String() = %q", want, want.String())
		}
	}
	if _, err := ParsePolicy("live"); err == nil {
		t.Error("ParsePolicy(live) accepted")
	}
}
