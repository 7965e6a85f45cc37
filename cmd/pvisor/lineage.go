package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/lineage"
	"github.com/pvisor/pvisor/hv/snapshot"
)

// The rollback guard's operator side (docs/snapshot.md, "Rollback
// guard"): pvisor's state directory keeps each VM's lineage record and
// event log (package hv/lineage); a boot joins the lineage of its VM
// name, a restore the lineage its snapshot names, and a restore below the
// lineage's highest patch level, or of a snapshot marked compromised, is
// refused.

func init() {
	register(command{"snapshot", "snapshot a daemon VM (snapshot VM [FILE]); look at snapshot files and mark them (info SNAP, mark SNAP compromised)", runSnapshotCmd})
}

// defaultStateDir is --state-dir's default: $PVISOR_STATE_DIR, else
// /var/lib/pvisor for root, else $XDG_STATE_HOME/pvisor (or
// ~/.local/state/pvisor).
func defaultStateDir() string {
	if d := os.Getenv("PVISOR_STATE_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/pvisor"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "pvisor")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "pvisor")
	}
	return ""
}

const stateDirUsage = "pvisor's state directory: lineage records and event logs (default $PVISOR_STATE_DIR, /var/lib/pvisor for root, else ~/.local/state/pvisor)"

// vmLineage is a running VM's lineage, for its events.
type vmLineage struct {
	l    *lineage.Lineage
	name string
}

func (v *vmLineage) log(e lineage.Event) error {
	if v == nil {
		return nil
	}
	e.VM = v.name
	return v.l.Log(e)
}

// bootLineage joins a booting VM to its name's lineage and fills cfg's
// lineage fields.
func bootLineage(st *lineage.Store, cfg *hv.Config) (*vmLineage, error) {
	l, err := st.ForName(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("lineage of %s: %v", cfg.Name, err)
	}
	r, err := l.Load()
	if err != nil {
		return nil, err
	}
	cfg.Lineage = lineage.Recorder{L: l, VM: cfg.Name}
	cfg.LineageID, cfg.LineageHighest = l.ID(), r.Highest
	v := &vmLineage{l: l, name: cfg.Name}
	return v, v.log(lineage.Event{Event: "boot", Highest: r.Highest})
}

// restoreGuard is the rollback guard for restoring snapshot path as the
// VM named name ("" keeps the snapshot's): it refuses a snapshot marked
// compromised, and one below its lineage's highest patch level unless
// allow (--allow-rollback); each outcome is an event in the lineage's log.
// *out receives the lineage once the restore is allowed.
func restoreGuard(st *lineage.Store, path, name string, allow bool, out **vmLineage) func(h *snapshot.Header) (hv.RestoreLineage, error) {
	return func(h *snapshot.Header) (hv.RestoreLineage, error) {
		l, created, err := st.Get(lineage.ID(h.LineageID))
		if err != nil {
			return hv.RestoreLineage{}, fmt.Errorf("lineage record: %v", err)
		}
		if name == "" {
			name = h.Name
		}
		v := &vmLineage{l: l, name: name}
		snap := hex.EncodeToString(h.SnapshotID[:])
		ev := lineage.Event{Snapshot: snap, Path: path, Level: h.PatchLevel}
		if created {
			// The record is gone or the snapshot comes from another host:
			// the guard starts from the snapshot's own level.
			ev.Detail = "no lineage record in " + st.Dir() + ": a new one starts at the snapshot's patch level"
		}
		r, err := l.Load()
		if err != nil {
			return hv.RestoreLineage{}, err
		}
		ev.Highest = r.Highest
		refuse := func(msg string) (hv.RestoreLineage, error) {
			ev.Event, ev.Detail = "restore-refused", msg
			if err := v.log(ev); err != nil {
				return hv.RestoreLineage{}, fmt.Errorf("%s (and logging the refusal: %v)", msg, err)
			}
			return hv.RestoreLineage{}, errors.New(msg)
		}
		if r.IsCompromised(snap) {
			return refuse(fmt.Sprintf("snapshot %s is marked compromised (pvisor snapshot mark): it is never restored", snap))
		}
		rl := hv.RestoreLineage{Recorder: lineage.Recorder{L: l, VM: name}, Highest: r.Highest}
		ev.Event = "restore"
		if h.PatchLevel < r.Highest {
			if !allow {
				return refuse(fmt.Sprintf("snapshot %s is at patch level %d, below its lineage's highest patch level %d: restoring it would bring back a state without the fixes since; give --allow-rollback to restore it anyway (the VM then runs flagged as rolled back)", snap, h.PatchLevel, r.Highest))
			}
			ev.Event, rl.RolledBack = "rollback", true
		}
		if err := v.log(ev); err != nil {
			return hv.RestoreLineage{}, fmt.Errorf("event log: %v", err)
		}
		if err := st.BindName(name, l); err != nil {
			return hv.RestoreLineage{}, err
		}
		*out = v
		return rl, nil
	}
}

// runSnapshotCmd is `pvisor snapshot`.
func runSnapshotCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", defaultStateDir(), stateDirUsage)
	keyFile := fs.String("key-file", "", "the snapshot's key file, for a keyed or encrypted snapshot")
	passFile := fs.String("passphrase-file", "", "a file whose first line is the snapshot's passphrase")
	api := fs.String("api", "", "snapshot VM: the daemon's API socket (default $PVISOR_API, else STATE-DIR/api.sock)")
	encrypt := fs.Bool("encrypt", false, "snapshot VM: encrypt it (AES-256-GCM) with --key-file or --passphrase-file")
	leavePaused := fs.Bool("leave-paused", false, "snapshot VM: leave the VM paused")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pvisor snapshot [--api SOCK] [--leave-paused] [--key-file K | --passphrase-file P [--encrypt]] VM [FILE]\n"+
			"       pvisor snapshot [--key-file K | --passphrase-file P] info SNAP\n"+
			"       pvisor snapshot [--state-dir DIR] [--key-file K | --passphrase-file P] mark SNAP compromised")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	a := fs.Args()
	if len(a) >= 1 && a[0] != "info" && a[0] != "mark" {
		if len(a) > 2 {
			fs.Usage()
			return 2
		}
		req := snapshotRequest{LeavePaused: *leavePaused, Encrypt: *encrypt, KeyFile: *keyFile, PassphraseFile: *passFile}
		if len(a) == 2 {
			req.Path = a[1]
		}
		for _, p := range []*string{&req.Path, &req.KeyFile, &req.PassphraseFile} {
			if *p != "" {
				abs, err := filepath.Abs(*p)
				if err != nil {
					fmt.Fprintf(stderr, "pvisor snapshot: %v\n", err)
					return 2
				}
				*p = abs
			}
		}
		path := *api
		if path == "" {
			path = defaultAPISocket(*stateDir)
		}
		var info snapshotInfo
		if err := newAPIClient(path).do("POST", vmPath(a[0], "/snapshots"), req, &info); err != nil {
			fmt.Fprintf(stderr, "pvisor snapshot: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: snapshot %s at patch level %d in %s\n", a[0], info.ID, info.PatchLevel, info.Path)
		return 0
	}
	if len(a) < 2 || (a[0] == "info" && len(a) != 2) || (a[0] == "mark" && (len(a) != 3 || a[2] != "compromised")) || (a[0] != "info" && a[0] != "mark") {
		fs.Usage()
		return 2
	}
	key, err := loadKey(*keyFile, *passFile)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor snapshot: %v\n", err)
		return 2
	}
	h, err := readSnapshotHeader(a[1], key)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor snapshot: %s: %v\n", a[1], err)
		return 1
	}
	snap := hex.EncodeToString(h.SnapshotID[:])
	if a[0] == "info" {
		fmt.Fprintf(stdout, "snapshot     %s\nvm           %s\nmode         %s\nmemory       %d MiB\npatch level  %d\nlineage      %s\ngeneration   %s\ncreated      %s\nprotection   %v\n",
			snap, h.Name, h.Mode, h.MemorySize>>20, h.PatchLevel, hex.EncodeToString(h.LineageID[:]),
			hex.EncodeToString(h.GenerationID[:]), h.Created.UTC().Format("2006-01-02 15:04:05 MST"), h.Protection)
		return 0
	}
	st, err := lineage.Open(*stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor snapshot: %v\n", err)
		return 2
	}
	l, _, err := st.Get(lineage.ID(h.LineageID))
	if err == nil {
		err = l.MarkCompromised(snap)
	}
	if err == nil {
		abs, _ := filepath.Abs(a[1])
		err = l.Log(lineage.Event{VM: h.Name, Event: "mark-compromised", Snapshot: snap, Path: abs, Level: h.PatchLevel})
	}
	if err != nil {
		fmt.Fprintf(stderr, "pvisor snapshot: mark: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "snapshot %s of %s (lineage %s) marked compromised: every restore of it is refused\n", snap, h.Name, hex.EncodeToString(h.LineageID[:]))
	return 0
}

// readSnapshotHeader reads and authenticates a snapshot file's header: a
// keyed or encrypted snapshot needs its key.
func readSnapshotHeader(path string, key *snapshot.Key) (snapshot.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return snapshot.Header{}, err
	}
	defer f.Close()
	r, err := snapshot.NewReader(f, snapshot.ReaderOptions{Key: key})
	if err != nil {
		return snapshot.Header{}, err
	}
	return r.Header(), nil
}

// parsePatchLevel reads `pvisor ctl patch-level VM N`'s N.
func parsePatchLevel(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > hv.MaxPatchLevel {
		return 0, fmt.Errorf("patch level %q: want a whole number from 1 to %d", s, uint64(hv.MaxPatchLevel))
	}
	return n, nil
}
