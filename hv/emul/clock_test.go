package emul

import (
	"testing"
	"time"
)

func TestFakeClock(t *testing.T) {
	var c FakeClock
	steps := []struct {
		op   string
		d    time.Duration
		want time.Duration
	}{
		{"now", 0, 0},
		{"add", time.Millisecond, time.Millisecond},
		{"add", -time.Second, time.Millisecond}, // ignored
		{"set", time.Second, time.Second},
		{"set", time.Millisecond, time.Second}, // backwards: refused
		{"add", 5 * time.Nanosecond, time.Second + 5},
	}
	for i, s := range steps {
		switch s.op {
		case "add":
			if got := c.Add(s.d); got != s.want {
				t.Errorf("step %d: Add returned %v", i, got)
			}
		case "set":
			c.Set(s.d)
		}
		if got := c.Now(); got != s.want {
			t.Errorf("step %d: Now = %v, want %v", i, got, s.want)
		}
	}
}

func TestRealClock(t *testing.T) {
	c := NewRealClock()
	a := c.Now()
	b := c.Now()
	if a < 0 || b < a || a > time.Minute {
		t.Errorf("RealClock: %v then %v", a, b)
	}
	var _ Clock = c
	var _ Clock = &FakeClock{}
}
