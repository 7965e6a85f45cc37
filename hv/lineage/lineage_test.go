package lineage

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestRaiseNeverLowers(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ForName("web")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ level, want uint64 }{{5, 5}, {3, 5}, {7, 7}, {6, 7}} {
		h, err := l.Raise("web", c.level, "6.12.0")
		if err != nil || h != c.want {
			t.Fatalf("Raise(%d) = %d, %v; want %d", c.level, h, err, c.want)
		}
	}
	r, err := l.Load()
	if err != nil || r.Highest != 7 {
		t.Fatalf("record %+v, %v: want highest 7", r, err)
	}
	ev, err := l.Events()
	if err != nil || len(ev) != 4 || ev[3].Level != 6 || ev[3].Highest != 7 {
		t.Fatalf("events %+v, %v", ev, err)
	}
	// The name keeps its lineage; another name gets another.
	l2, err := s.ForName("web")
	if err != nil || l2.ID() != l.ID() {
		t.Fatalf("ForName again: %v, %v", l2, err)
	}
	l3, err := s.ForName("db")
	if err != nil || l3.ID() == l.ID() {
		t.Fatalf("ForName(db) shares web's lineage")
	}
}

func TestConcurrentRaise(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, _, err := s.Get(ID{1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 1; i <= 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// A Lineage of its own, as another process would have.
			m := &Lineage{s: s, id: l.id}
			if _, err := m.Raise("c", uint64(i), ""); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	r, err := l.Load()
	if err != nil || r.Highest != 40 {
		t.Fatalf("highest %d, %v: want 40 (a lost update)", r.Highest, err)
	}
	ev, err := l.Events()
	if err != nil || len(ev) != 40 {
		t.Fatalf("%d events, %v: want 40 whole lines", len(ev), err)
	}
}

func TestCompromised(t *testing.T) {
	s, _ := Open(t.TempDir())
	l, _, err := s.Get(ID{2})
	if err != nil {
		t.Fatal(err)
	}
	a, b := "0123456789abcdef0123456789abcdef", "ffffffffffffffffffffffffffffffff"
	for _, id := range []string{b, a, b} {
		if err := l.MarkCompromised(id); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := l.Load()
	if !r.IsCompromised(a) || !r.IsCompromised(b) || len(r.Compromised) != 2 || r.IsCompromised("00000000000000000000000000000000") {
		t.Fatalf("compromised %v", r.Compromised)
	}
	if err := l.MarkCompromised("../x"); err == nil {
		t.Fatal("a non-hex snapshot ID was accepted")
	}
}

func TestHostileState(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	l, _, _ := s.Get(ID{3})
	p := l.path("record.json")
	for name, body := range map[string]string{
		"not json":  "{",
		"other id":  `{"id":"00000000000000000000000000000000"}`,
		"unsorted":  `{"id":"03000000000000000000000000000000","compromised_snapshots":["b","a"]}`,
		"too large": string(make([]byte, maxRecord+1)),
	} {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Raise("x", 1, ""); err == nil {
			t.Errorf("%s: record accepted", name)
		}
	}
	os.WriteFile(s.namePath("web"), []byte("../../etc\n"), 0o600)
	if _, err := s.ForName("web"); err == nil {
		t.Error("a name index naming a path was followed")
	}
	// A directory others can write is refused.
	open := filepath.Join(t.TempDir(), "st")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := Open(open); err == nil {
		t.Error("a world-writable state directory was accepted")
	}
}
