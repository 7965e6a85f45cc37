// Package lineage keeps pvisor's lineage records and event logs in its
// state directory: the rollback guard's memory (docs/snapshot.md,
// "Rollback guard").
//
// A lineage is a VM as booted and every VM restored from its snapshots,
// clones included. Its record holds the highest patch level any of them
// ran at and the snapshots the operator marked compromised. A VM's event
// log is the lineage's: one JSON object per line, appended.
//
// Layout of the state directory (mode 0700):
//
//	lineages/<id>/record.json   the record (written whole: temporary file, fsync, rename)
//	lineages/<id>/events.jsonl  the event log (appended, O_APPEND, one write per event)
//	lineages/<id>/lock          flock(2) for read-modify-write of the record
//	names/<sha256(name)>        the lineage ID a VM booted under that name belongs to
//
// IDs are 32 lowercase hex digits. Every file is the operator's: the
// directory is refused if another user can write it. Concurrent pvisor
// processes (clones of one lineage) serialize on the lock; a record is
// never half-written.
package lineage

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// ID names a lineage.
type ID [16]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID reads 32 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("lineage ID %q: want 32 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// maxRecord bounds a record file's size (a record lists at most
// MaxCompromised snapshot IDs).
const (
	maxRecord      = 1 << 20
	MaxCompromised = 4096
)

// Record is a lineage's record as stored.
type Record struct {
	ID string `json:"id"`
	// Highest is the highest patch level any VM of the lineage ran at.
	Highest uint64 `json:"highest_patch_level"`
	// Release is the release the guest declared with Highest ("" when the
	// operator set it).
	Release string `json:"release,omitempty"`
	// Compromised are the IDs (hex) of snapshots that must never be
	// restored, sorted.
	Compromised []string  `json:"compromised_snapshots,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// IsCompromised says whether snapshot id (hex) is marked.
func (r *Record) IsCompromised(id string) bool {
	_, ok := slices.BinarySearch(r.Compromised, id)
	return ok
}

// Event is one line of an event log.
type Event struct {
	Time  time.Time `json:"time"`
	VM    string    `json:"vm,omitempty"`
	Event string    `json:"event"` // boot, patch-level, snapshot, restore, rollback, restore-refused, mark-compromised, grant, revoke
	// Snapshot is the snapshot's ID (hex) and Path where it is, for the
	// snapshot events.
	Snapshot string `json:"snapshot,omitempty"`
	Path     string `json:"path,omitempty"`
	// Level is the patch level the event is about; Highest the record's
	// highest after it.
	Level   uint64 `json:"patch_level,omitempty"`
	Highest uint64 `json:"highest_patch_level,omitempty"`
	Release string `json:"release,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Store is a state directory.
type Store struct {
	dir string
}

// Open opens (creating it, mode 0700) the state directory dir.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("no state directory: give --state-dir")
	}
	dir = filepath.Clean(dir)
	for _, d := range []string{dir, filepath.Join(dir, "lineages"), filepath.Join(dir, "names")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %v", err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("state directory %s: %v", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("state directory %s is not a directory", dir)
	}
	if st.Mode&0o022 != 0 || st.Uid != uint32(os.Geteuid()) {
		return nil, fmt.Errorf("state directory %s: owned by uid %d with mode %#o: it must be this user's (uid %d) and writable by no one else (chmod 700)", dir, st.Uid, st.Mode&0o777, os.Geteuid())
	}
	return &Store{dir: dir}, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Lineage is one lineage's record and log in a Store.
type Lineage struct {
	s  *Store
	id ID
}

// ID names the lineage.
func (l *Lineage) ID() ID { return l.id }

func (l *Lineage) path(name string) string {
	return filepath.Join(l.s.dir, "lineages", l.id.String(), name)
}

// Get returns the lineage id, creating its record (at patch level 0) if
// it has none; created says it did.
func (s *Store) Get(id ID) (l *Lineage, created bool, err error) {
	l = &Lineage{s: s, id: id}
	if err := os.MkdirAll(filepath.Dir(l.path("x")), 0o700); err != nil {
		return nil, false, err
	}
	err = l.update(func(r *Record, exists bool) (bool, error) {
		created = !exists
		return !exists, nil
	})
	if err != nil {
		return nil, false, err
	}
	return l, created, nil
}

// ForName returns the lineage of the VM booted as name: the one recorded
// for the name, or a new one, recorded for it.
func (s *Store) ForName(name string) (*Lineage, error) {
	p := s.namePath(name)
	if b, err := os.ReadFile(p); err == nil {
		id, err := ParseID(string(bytes.TrimSpace(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		l, _, err := s.Get(id)
		return l, err
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var id ID
	if _, err := io.ReadFull(rand.Reader, id[:]); err != nil {
		return nil, err
	}
	l, _, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(p, []byte(id.String()+"\n")); err != nil {
		return nil, err
	}
	return l, nil
}

// BindName records that the VM named name belongs to lineage l (a
// restored VM under a new name), unless the name already has a lineage.
func (s *Store) BindName(name string, l *Lineage) error {
	p := s.namePath(name)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return WriteFileAtomic(p, []byte(l.id.String()+"\n"))
}

func (s *Store) namePath(name string) string {
	h := sha256.Sum256([]byte(name))
	return filepath.Join(s.dir, "names", hex.EncodeToString(h[:16]))
}

// Load reads the record.
func (l *Lineage) Load() (Record, error) {
	r, _, err := l.read()
	return r, err
}

func (l *Lineage) read() (Record, bool, error) {
	var r Record
	f, err := os.Open(l.path("record.json"))
	if errors.Is(err, os.ErrNotExist) {
		return Record{ID: l.id.String()}, false, nil
	}
	if err != nil {
		return r, false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return r, false, err
	}
	if len(b) > maxRecord {
		return r, false, fmt.Errorf("lineage record %s is over %d bytes", f.Name(), maxRecord)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("lineage record %s: %v", f.Name(), err)
	}
	if r.ID != l.id.String() {
		return r, false, fmt.Errorf("lineage record %s names lineage %q", f.Name(), r.ID)
	}
	if len(r.Compromised) > MaxCompromised || !slices.IsSorted(r.Compromised) {
		return r, false, fmt.Errorf("lineage record %s: its compromised list is too long or unsorted", f.Name())
	}
	return r, true, nil
}

// update runs fn on the record under the lineage's lock and writes the
// record back if fn says so.
func (l *Lineage) update(fn func(r *Record, exists bool) (bool, error)) error {
	lock, err := os.OpenFile(l.path("lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	r, exists, err := l.read()
	if err != nil {
		return err
	}
	write, err := fn(&r, exists)
	if err != nil || !write {
		return err
	}
	now := time.Now().UTC()
	if r.Created.IsZero() {
		r.Created = now
	}
	r.Updated = now
	b, err := json.MarshalIndent(&r, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(l.path("record.json"), append(b, '\n'))
}

// Raise makes the record's highest level at least level and returns it
// (it implements hv.LineageRecorder with a log). The event names vm.
func (l *Lineage) Raise(vm string, level uint64, release string) (uint64, error) {
	var highest uint64
	err := l.update(func(r *Record, _ bool) (bool, error) {
		if level <= r.Highest {
			highest = r.Highest
			return false, nil
		}
		r.Highest, r.Release, highest = level, release, level
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	return highest, l.Log(Event{VM: vm, Event: "patch-level", Level: level, Highest: highest, Release: release})
}

// MarkCompromised adds snapshot snap (hex ID) to the record's
// compromised list; it is not an error if it is there already.
func (l *Lineage) MarkCompromised(snap string) error {
	if _, err := hex.DecodeString(snap); err != nil || len(snap) != 32 {
		return fmt.Errorf("snapshot ID %q: want 32 hex digits", snap)
	}
	return l.update(func(r *Record, _ bool) (bool, error) {
		i, found := slices.BinarySearch(r.Compromised, snap)
		if found {
			return false, nil
		}
		if len(r.Compromised) >= MaxCompromised {
			return false, fmt.Errorf("lineage %s already has %d compromised snapshots", l.id, MaxCompromised)
		}
		r.Compromised = slices.Insert(r.Compromised, i, snap)
		return true, nil
	})
}

// maxEvent bounds one event line.
const maxEvent = 4096

// Log appends e (its time set now if zero) to the lineage's event log.
func (l *Lineage) Log(e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b, err := json.Marshal(&e)
	if err != nil {
		return err
	}
	if len(b) >= maxEvent {
		return fmt.Errorf("event of %d bytes: at most %d", len(b), maxEvent)
	}
	f, err := os.OpenFile(l.path("events.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// One write of a whole line: appends from several processes never
	// interleave within a line.
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Events reads the lineage's event log.
func (l *Lineage) Events() ([]Event, error) {
	b, err := os.ReadFile(l.path("events.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Event
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return out, fmt.Errorf("%s line %d: %v", l.path("events.jsonl"), i+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// EventsPath is the event log's file.
func (l *Lineage) EventsPath() string { return l.path("events.jsonl") }

// WriteFileAtomic writes b to path (mode 0600) through a synced temporary file and a
// rename, then syncs the directory.
func WriteFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Recorder is a lineage as hv.LineageRecorder for the VM named vm.
type Recorder struct {
	L  *Lineage
	VM string
}

// Raise implements hv.LineageRecorder.
func (r Recorder) Raise(level uint64, release string) (uint64, error) {
	return r.L.Raise(r.VM, level, release)
}
