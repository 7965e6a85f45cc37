package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/attest"
	"github.com/pvisor/pvisor/hv/audit"
	hvcpu "github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/lineage"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
	"github.com/pvisor/pvisor/sched/cgroup"
)

// The daemon (`pvisor serve`, docs/api.md): it owns VMs by name. A VM's
// definition is persistent (state-dir/daemon/vms/NAME.json), so the
// inventory survives a restart of the daemon; running VMs do not: the
// daemon stops them cleanly when it is stopped, and one that finds a VM
// it never stopped (it was killed) reports it stopped, with why. This is
// Xen's xl model without xenstore: the definitions are the inventory.

// Definition is a VM as the operator defined it: the keys of a --vm spec
// (docs/api.md, "VM definition").
type Definition struct {
	Name    string   `json:"name"`
	Kernel  string   `json:"kernel"`
	Initrd  string   `json:"initrd,omitempty"`
	Cmdline string   `json:"cmdline,omitempty"`
	Mem     string   `json:"mem,omitempty"`   // K, M or G suffix; default 256M
	VCPUs   int      `json:"vcpus,omitempty"` // default 1
	Mode    string   `json:"mode,omitempty"`  // pv (default), trap, hwassist
	Weight  int      `json:"cpu_weight,omitempty"`
	Cap     int      `json:"cpu_cap,omitempty"`
	Disks   []string `json:"disks,omitempty"` // --disk values
	Nets    []string `json:"nets,omitempty"`  // --net values
	RNG     bool     `json:"rng,omitempty"`
	// Owner is a free label for the inventory (who answers for the VM).
	Owner string `json:"owner,omitempty"`
	// IdleAfter (a Go duration, at least 10s) and IdleAction (stop, or
	// snapshot-stop: snapshot, then stop) are the VM's idle policy: a
	// running VM idle that long is stopped. Idle: its vCPUs and devices
	// used under 2% of one host CPU, and no console input came, over each
	// second (docs/api.md, "Idle VMs").
	IdleAfter  string `json:"idle_after,omitempty"`
	IdleAction string `json:"idle_action,omitempty"`
	// OnDemand VMs start (or restore from their latest snapshot) when a
	// client attaches to the console or connects to an endpoint:
	// LISTEN=GUEST-IP:PORT, LISTEN unix:PATH or 127.0.0.1:PORT
	// (daemon_ondemand.go).
	OnDemand  bool     `json:"on_demand,omitempty"`
	Endpoints []string `json:"endpoints,omitempty"`
	// ExpectMeasurements is a launch policy (pvisor measure's file, an
	// absolute path): a boot that measures otherwise is refused.
	ExpectMeasurements string `json:"expect_measurements,omitempty"`
}

// idlePolicy returns the definition's idle policy (0: none).
func (d *Definition) idlePolicy() (time.Duration, string, error) {
	if d.IdleAfter == "" && d.IdleAction == "" {
		return 0, "", nil
	}
	after, err := time.ParseDuration(d.IdleAfter)
	if err != nil || after < 10*time.Second || after > 365*24*time.Hour {
		return 0, "", fmt.Errorf("idle_after %q: want a duration from 10s to a year, such as 15m", d.IdleAfter)
	}
	switch d.IdleAction {
	case "", "stop":
		return after, "stop", nil
	case "snapshot-stop":
		return after, d.IdleAction, nil
	}
	return 0, "", fmt.Errorf("idle_action %q: want stop or snapshot-stop", d.IdleAction)
}

// maxDefinitionItems bounds a definition's lists.
const maxDefinitionItems = 16

// spec validates d into a vmSpec; files are checked to exist.
func (d *Definition) spec() (vmSpec, error) {
	var s vmSpec
	s.memBytes, s.vcpus, s.mode = 256<<20, 1, hvcpu.ModePV
	set := func(k, v string) error {
		if err := s.set(k, v); err != nil {
			return err
		}
		return nil
	}
	if err := set("name", d.Name); err != nil {
		return s, err
	}
	if d.Kernel == "" || !filepath.IsAbs(d.Kernel) {
		return s, fmt.Errorf("kernel %q: give an absolute path", d.Kernel)
	}
	if d.Initrd != "" && !filepath.IsAbs(d.Initrd) {
		return s, fmt.Errorf("initrd %q: give an absolute path", d.Initrd)
	}
	s.kernel, s.initrd, s.cmdline = d.Kernel, d.Initrd, d.Cmdline
	if len(d.Cmdline) > 4096 || len(d.Owner) > 256 || strings.ContainsAny(d.Owner, "\n\r\t") {
		return s, errors.New("cmdline over 4096 bytes or an owner label over 256 bytes or with control characters")
	}
	if d.Mem != "" {
		if err := set("mem", d.Mem); err != nil {
			return s, err
		}
	}
	if d.VCPUs != 0 {
		if err := set("vcpus", fmt.Sprint(d.VCPUs)); err != nil {
			return s, err
		}
	}
	if d.Mode != "" {
		if err := set("mode", d.Mode); err != nil {
			return s, err
		}
	}
	if d.Weight != 0 {
		if err := set("cpu-weight", fmt.Sprint(d.Weight)); err != nil {
			return s, err
		}
	}
	if d.Cap != 0 {
		if err := set("cpu-cap", fmt.Sprint(d.Cap)); err != nil {
			return s, err
		}
	}
	if len(d.Disks) > maxDefinitionItems || len(d.Nets) > maxDefinitionItems {
		return s, fmt.Errorf("%d disks and %d NICs: at most %d each", len(d.Disks), len(d.Nets), maxDefinitionItems)
	}
	for _, v := range d.Disks {
		if err := set("disk", v); err != nil {
			return s, err
		}
	}
	for _, v := range d.Nets {
		if err := set("net", v); err != nil {
			return s, err
		}
	}
	s.rng = d.RNG
	if _, _, err := d.idlePolicy(); err != nil {
		return s, err
	}
	if len(d.Endpoints) > maxDefinitionItems {
		return s, fmt.Errorf("%d endpoints: at most %d", len(d.Endpoints), maxDefinitionItems)
	}
	if len(d.Endpoints) > 0 && !d.OnDemand {
		return s, errors.New("endpoints start a VM on demand: set on_demand too")
	}
	for _, e := range d.Endpoints {
		if _, err := parseEndpoint(e); err != nil {
			return s, err
		}
	}
	if d.ExpectMeasurements != "" {
		if !filepath.IsAbs(d.ExpectMeasurements) {
			return s, fmt.Errorf("expect_measurements %q: give an absolute path", d.ExpectMeasurements)
		}
		if _, err := loadExpected(d.ExpectMeasurements); err != nil {
			return s, err
		}
	}
	if err := checkSpecs([]vmSpec{s}); err != nil {
		return s, err
	}
	for _, f := range []struct{ what, path string }{{"kernel", s.kernel}, {"initrd", s.initrd}} {
		if f.path != "" {
			if err := statFile(f.what, f.path, s.memBytes); err != nil {
				return s, err
			}
		}
	}
	for _, dk := range s.disks {
		if !filepath.IsAbs(dk.Path) {
			return s, fmt.Errorf("disk %q: give an absolute path", dk.Path)
		}
		if err := statFile("disk", dk.Path, math.MaxUint64); err != nil {
			return s, err
		}
	}
	return s, nil
}

// summary is what listings show of d: mode, vCPUs, memory, weight and
// cap, read without opening any file (d was validated when created).
func (d *Definition) summary() vmSpec {
	s := vmSpec{name: d.Name, memBytes: 256 << 20, vcpus: 1, mode: hvcpu.ModePV, weight: d.Weight, cap: d.Cap}
	if d.Mem != "" {
		if n, err := parseSize(d.Mem); err == nil {
			s.memBytes = n
		}
	}
	if d.VCPUs > 0 {
		s.vcpus = d.VCPUs
	}
	if m, err := hvcpu.ParseMode(d.Mode); d.Mode != "" && err == nil {
		s.mode = m
	}
	return s
}

// VM states as the API reports them.
const (
	stateStopped = "stopped" // defined, not running (never started, or ended)
	stateRunning = "running"
	statePaused  = "paused"
)

// vmStatus is what the daemon keeps of a VM beside its definition.
type vmStatus struct {
	Created    time.Time `json:"created"`
	LastActive time.Time `json:"last_active,omitempty"` // last start, resume or console input
	// Running says the VM was running when this was written: a daemon
	// that finds it at start was not stopped cleanly.
	Running bool `json:"running"`
	// LastExit is how the VM last ended.
	LastExit  string         `json:"last_exit,omitempty"`
	Snapshots []snapshotInfo `json:"snapshots,omitempty"`
}

// snapshotInfo is one snapshot the daemon took of a VM.
type snapshotInfo struct {
	ID         string    `json:"id"`
	Path       string    `json:"path"`
	Created    time.Time `json:"created"`
	PatchLevel uint64    `json:"patch_level"`
	Encrypted  bool      `json:"encrypted,omitempty"`
}

// maxSnapshotsKept bounds a VM's snapshot list (older entries are
// forgotten, not deleted).
const maxSnapshotsKept = 256

// vmRecord is a VM's file in the daemon's directory.
type vmRecord struct {
	Definition Definition `json:"definition"`
	Status     vmStatus   `json:"status"`
}

// vmEntry is one VM of the daemon.
type vmEntry struct {
	mu   sync.Mutex
	rec  vmRecord
	vm   vmBackend     // nil unless running or paused
	done chan struct{} // closed when the running VM has ended
	con  *consoleHub
	lin  *vmLineage
	busy bool      // a start, restore or stop is in progress
	od   *onDemand // its endpoints, if on demand
	// started is when the running VM started; lastCPU the CPU time it had
	// used at the last idle check.
	started time.Time
	lastCPU time.Duration
	// lastPriv and lastRefused are the violation counters at the last
	// check.
	lastPriv, lastRefused uint64
	gone                  bool // destroyed
	// mlog is the running VM's measurement log (nil for a restored VM);
	// mlogLevel the patch level it last extended (mlogLevelSet: any).
	// mu protects them.
	mlog         *attest.Log
	mlogLevel    uint64
	mlogLevelSet bool
}

// daemon owns the VMs.
type daemon struct {
	dir    string // state-dir/daemon
	store  *lineage.Store
	budget *mm.Budget
	sc     *sched.Scheduler
	sw     *netswitch.Switch

	mu  sync.Mutex
	vms map[string]*vmEntry

	stopIdle chan struct{} // ends watchIdle

	// isolate runs each VM in a pvisor run process of its own (serve
	// --isolate), under the control group isoGroup; isoMem is the guest
	// memory those processes hold (mu protects it).
	isolate  bool
	isoGroup *cgroup.Group
	isoMem   uint64
	// seccomp is the VM processes' --seccomp; mon, when set (serve
	// --audit), watches their system calls from outside.
	seccomp string
	mon     *audit.Monitor
}

// maxVMs bounds the inventory (sprawl has a ceiling).
const maxVMs = 1024

// openDaemon loads the inventory from stateDir.
func openDaemon(stateDir string, budget uint64, workers int) (*daemon, error) {
	st, err := lineage.Open(stateDir)
	if err != nil {
		return nil, err
	}
	d := &daemon{dir: filepath.Join(st.Dir(), "daemon"), store: st, budget: mm.NewBudget(budget),
		sc: sched.New(sched.Config{Workers: workers}), sw: netswitch.New(), vms: map[string]*vmEntry{}}
	if err := os.MkdirAll(filepath.Join(d.dir, "vms"), 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(d.dir, "vms"))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || checkName(name) != nil {
			continue
		}
		b, err := readFile("VM record", filepath.Join(d.dir, "vms", e.Name()), 1<<20)
		if err != nil {
			return nil, err
		}
		var rec vmRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.Definition.Name != name {
			return nil, fmt.Errorf("VM record %s is damaged (%v): move it away to start without it", e.Name(), err)
		}
		ent := &vmEntry{rec: rec, con: newConsoleHub()}
		if rec.Status.Running {
			ent.rec.Status.Running = false
			ent.rec.Status.LastExit = "the daemon ended without stopping it (killed or crashed)"
			if err := d.save(ent); err != nil {
				return nil, err
			}
		}
		d.vms[name] = ent
	}
	// The scheduler runs before an on-demand endpoint can start a VM. Its
	// workers are not bound to host CPUs (daemon VMs have no cpuset), so
	// Start fails only on a broken host.
	if err := d.sc.Start(); err != nil {
		return nil, fmt.Errorf("the scheduler did not start: %v", err)
	}
	for _, ent := range d.vms {
		if err := d.serveEndpoints(ent); err != nil {
			ent.rec.Status.LastExit = "its endpoints could not be served: " + err.Error()
		}
	}
	d.stopIdle = make(chan struct{})
	go d.watchIdle(time.Second)
	return d, nil
}

// idleCPU is the share of one host CPU under which a VM counts as idle.
const idleCPU = 0.02

// watchIdle checks every period which running VMs are active (CPU above
// idleCPU, or console input: touch), and applies the idle policy of
// those idle for longer than it allows.
func (d *daemon) watchIdle(period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-d.stopIdle:
			return
		case <-t.C:
		}
		ents := d.entries()
		now := time.Now().UTC()
		for _, e := range ents {
			e.mu.Lock()
			vm := e.vm
			if vm == nil || e.busy {
				e.mu.Unlock()
				continue
			}
			cpu := vm.CPUStats().CPU
			if float64(cpu-e.lastCPU) > idleCPU*float64(period) || e.od != nil && e.od.conns > 0 {
				e.rec.Status.LastActive = now
			}
			e.lastCPU = cpu
			// Violations: privileged instructions after PV start-up and
			// refused hypercalls, one event per second that has new ones.
			_, priv, _, _ := vm.StatsSnapshot()
			var p uint64
			for _, n := range priv {
				p += n
			}
			ref := vm.RefusedHypercalls()
			if vm.Mode() == hvcpu.ModePV && (p > e.lastPriv || ref > e.lastRefused) {
				go e.log(lineage.Event{Event: "violation", Detail: fmt.Sprintf("%d privileged instructions after PV start-up and %d refused hypercalls in the last second (%d and %d in all)", p-e.lastPriv, ref-e.lastRefused, p, ref)})
			}
			e.lastPriv, e.lastRefused = p, ref
			after, action, _ := e.rec.Definition.idlePolicy()
			idle := after > 0 && now.Sub(e.rec.Status.LastActive) > after && !vm.Paused()
			e.mu.Unlock()
			if idle {
				go d.idleStop(e, vm, action, after)
			}
		}
	}
}

// idleStop applies an idle policy to e's VM.
func (d *daemon) idleStop(e *vmEntry, vm vmBackend, action string, after time.Duration) {
	e.mu.Lock()
	if e.vm != vm || e.busy {
		e.mu.Unlock()
		return
	}
	e.busy = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.busy = false
		e.mu.Unlock()
	}()
	detail := fmt.Sprintf("idle for over %v", after)
	if action == "snapshot-stop" {
		if _, err := d.snapshot(e, vm, snapshotRequest{LeavePaused: true}); err != nil {
			e.log(lineage.Event{Event: "idle-stop", Detail: detail + ": the snapshot failed, so it keeps running: " + err.Error()})
			return
		}
	}
	e.log(lineage.Event{Event: "idle-stop", Detail: detail + " (" + action + ")"})
	e.mu.Lock()
	done := e.done
	e.mu.Unlock()
	vm.Stop(0, "stopped by its idle policy ("+detail+")")
	<-done
}

// save writes ent's record. Precondition: ent.mu held (or ent not yet
// shared).
func (d *daemon) save(ent *vmEntry) error {
	b, err := json.MarshalIndent(&ent.rec, "", "  ")
	if err != nil {
		return err
	}
	return lineage.WriteFileAtomic(filepath.Join(d.dir, "vms", ent.rec.Definition.Name+".json"), append(b, '\n'))
}

// apiError is an error with the HTTP status it answers.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, format string, a ...any) error {
	return &apiError{code, fmt.Sprintf(format, a...)}
}

// get finds a VM.
func (d *daemon) get(name string) (*vmEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ent, ok := d.vms[name]
	if !ok {
		return nil, errorf(404, "no VM named %q", name)
	}
	return ent, nil
}

// create defines a VM.
func (d *daemon) create(def Definition) (*vmEntry, error) {
	if _, err := def.spec(); err != nil {
		return nil, errorf(400, "%v", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.vms[def.Name]; ok {
		return nil, errorf(409, "a VM named %q exists", def.Name)
	}
	if len(d.vms) >= maxVMs {
		return nil, errorf(409, "the daemon has %d VMs, its maximum: destroy some first", maxVMs)
	}
	ent := &vmEntry{rec: vmRecord{Definition: def, Status: vmStatus{Created: time.Now().UTC()}}, con: newConsoleHub()}
	if err := d.serveEndpoints(ent); err != nil {
		return nil, errorf(409, "%v", err)
	}
	if err := d.save(ent); err != nil {
		if ent.od != nil {
			ent.od.close()
		}
		return nil, err
	}
	d.vms[def.Name] = ent
	if l, err := d.store.ForName(def.Name); err == nil {
		(&vmLineage{l: l, name: def.Name}).log(lineage.Event{Event: "created", Detail: "owner " + strconv.Quote(def.Owner)})
	}
	return ent, nil
}

// list returns every VM's description, sorted by name.
func (d *daemon) list() []apiVM {
	ents := d.entries()
	out := make([]apiVM, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.describe())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// claim marks ent busy for a state change: it fails if another is in
// progress or ent is destroyed. Precondition: ent.mu held.
func (ent *vmEntry) claim() error {
	if ent.gone {
		return errorf(404, "VM %q was destroyed", ent.rec.Definition.Name)
	}
	if ent.busy {
		return errorf(409, "VM %q is being started, restored or stopped: try again", ent.rec.Definition.Name)
	}
	ent.busy = true
	return nil
}

// start boots ent's VM, or restores it from snap (a path) when snap is
// given, with allowRollback and key files as pvisor run's.
func (d *daemon) start(ent *vmEntry, restore *restoreRequest) error {
	ent.mu.Lock()
	if err := ent.claim(); err != nil {
		ent.mu.Unlock()
		return err
	}
	if ent.vm != nil {
		ent.busy = false
		ent.mu.Unlock()
		return errorf(409, "VM %q is running already", ent.rec.Definition.Name)
	}
	def := ent.rec.Definition
	ent.mlog = nil
	ent.mu.Unlock()
	vm, lin, err := d.boot(def, ent, restore)
	ent.mu.Lock()
	ent.busy = false
	if err != nil {
		ent.mu.Unlock()
		return err
	}
	ent.vm, ent.lin, ent.done, ent.started = vm, lin, make(chan struct{}), time.Now()
	ent.lastCPU, ent.lastPriv, ent.lastRefused = 0, 0, 0
	ent.rec.Status.Running, ent.rec.Status.LastActive, ent.rec.Status.LastExit = true, time.Now().UTC(), ""
	if err := d.save(ent); err != nil {
		vm.Stop(1, "the daemon could not record the start")
	}
	done := ent.done
	ent.mu.Unlock()
	if restore == nil {
		lin.log(lineage.Event{Event: "started"})
	}
	go func() {
		st := vm.Run()
		ent.mu.Lock()
		ent.vm = nil
		ent.rec.Status.Running = false
		ent.rec.Status.LastExit = fmt.Sprintf("%s (status %d)", st.Reason, st.Code)
		if !ent.gone {
			d.save(ent)
		}
		lin := ent.lin
		ent.mu.Unlock()
		ev := "stopped"
		if !st.External && st.Code != 0 {
			ev = "crashed"
		}
		lin.log(lineage.Event{Event: ev, Detail: fmt.Sprintf("%s (status %d)", st.Reason, st.Code)})
		close(done)
	}()
	// A restored VM is resumed by Run: report it once it runs.
	for t0 := time.Now(); restore != nil && !restore.Paused && vm.Paused() && time.Since(t0) < 5*time.Second; {
		select {
		case <-done:
			return nil
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// boot builds the VM of def (or restores it).
func (d *daemon) boot(def Definition, ent *vmEntry, restore *restoreRequest) (vmBackend, *vmLineage, error) {
	spec, err := def.spec()
	if err != nil {
		return nil, nil, errorf(400, "%v", err)
	}
	console := ent.con.writer()
	if restore != nil {
		key, err := loadKey(restore.KeyFile, restore.PassphraseFile)
		if err != nil {
			return nil, nil, errorf(400, "%v", err)
		}
		f, err := os.Open(restore.Snapshot)
		if err != nil {
			return nil, nil, errorf(400, "%v", err)
		}
		defer f.Close()
		var lin *vmLineage
		vm, err := hv.Restore(newBufReader(f), hv.RestoreConfig{Budget: d.budget, Name: def.Name, Key: key,
			Console: console, ConsoleIn: ent.con.reader(), Sched: d.sc, CPUWeight: spec.weight, CPUCap: spec.cap,
			Disks: spec.disks, RNG: spec.rng, NICs: spec.nics, Switch: d.sw, Paused: restore.Paused,
			// The VM's own overlays go back to the snapshot's disk: the VM
			// is stopped, so nothing has them open.
			OverwriteOverlays: true,
			Guard:             restoreGuard(d.store, restore.Snapshot, def.Name, restore.AllowRollback, &lin)})
		if err != nil {
			return nil, nil, errorf(409, "%v", err)
		}
		return localVM{vm}, lin, nil
	}
	if d.isolate && restore != nil {
		return nil, nil, errorf(409, "restore under pvisor serve --isolate: not yet (restore it with pvisor run --restore)")
	}
	kernel, err := readFile("kernel", spec.kernel, spec.memBytes)
	if err != nil {
		return nil, nil, errorf(400, "%v", err)
	}
	var initrd []byte
	if spec.initrd != "" {
		if initrd, err = readFile("initrd", spec.initrd, spec.memBytes); err != nil {
			return nil, nil, errorf(400, "%v", err)
		}
	}
	if def.ExpectMeasurements != "" {
		exp, err := loadExpected(def.ExpectMeasurements)
		if err != nil {
			return nil, nil, errorf(409, "launch policy: %v", err)
		}
		if err := exp.check(hv.Measure(kernel, initrd, spec.cmdline)); err != nil {
			return nil, nil, errorf(409, "refused by the launch policy (%s): %v", def.ExpectMeasurements, err)
		}
	}
	if d.isolate {
		return d.bootIsolated(def, spec, ent, kernel, initrd)
	}
	cfg := hv.Config{Name: spec.name, Sched: d.sc, CPUWeight: spec.weight, CPUCap: spec.cap,
		Kernel: kernel, Initrd: initrd, Cmdline: spec.cmdline, MemBytes: spec.memBytes, VCPUs: spec.vcpus,
		Mode: spec.mode, Budget: d.budget, Console: console, ConsoleIn: ent.con.reader(),
		Disks: spec.disks, RNG: spec.rng, NICs: spec.nics, Switch: d.sw}
	lin, err := bootLineage(d.store, &cfg)
	if err != nil {
		return nil, nil, err
	}
	mlog, err := buildMeasurementLog(spec, kernel, initrd)
	if err != nil {
		return nil, nil, errorf(400, "%v", err)
	}
	vm, err := hv.New(cfg)
	if err != nil {
		return nil, nil, errorf(409, "%v", err)
	}
	ent.mu.Lock()
	ent.mlog, ent.mlogLevelSet = mlog, false
	ent.mu.Unlock()
	return localVM{vm}, lin, nil
}

// stop stops ent's VM and waits (up to a minute) for it to end.
func (d *daemon) stop(ent *vmEntry, reason string) error {
	ent.mu.Lock()
	vm, done := ent.vm, ent.done
	ent.mu.Unlock()
	if vm == nil {
		return errorf(409, "VM %q is not running", ent.rec.Definition.Name)
	}
	vm.Stop(0, reason)
	select {
	case <-done:
		return nil
	case <-time.After(time.Minute):
		return errorf(500, "VM %q did not stop within a minute", ent.rec.Definition.Name)
	}
}

// destroy forgets a stopped VM: its definition goes; its lineage record,
// event log and snapshot files stay.
func (d *daemon) destroy(ent *vmEntry) error {
	ent.mu.Lock()
	defer ent.mu.Unlock()
	if ent.vm != nil || ent.busy {
		return errorf(409, "VM %q is running: stop it first", ent.rec.Definition.Name)
	}
	if ent.gone {
		return errorf(404, "VM %q was destroyed", ent.rec.Definition.Name)
	}
	if err := os.Remove(filepath.Join(d.dir, "vms", ent.rec.Definition.Name+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ent.gone = true
	if ent.od != nil {
		ent.od.close()
		ent.od = nil
	}
	d.mu.Lock()
	delete(d.vms, ent.rec.Definition.Name)
	d.mu.Unlock()
	return nil
}

// shutdown stops every running VM (the daemon is stopping) and records
// why.
func (d *daemon) shutdown(reason string) {
	ents := d.entries()
	var wg sync.WaitGroup
	for _, e := range ents {
		e.mu.Lock()
		if e.od != nil {
			e.od.close()
		}
		e.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.stop(e, reason)
		}()
	}
	wg.Wait()
	close(d.stopIdle)
	d.sc.Stop()
	if d.isoGroup != nil {
		d.isoGroup.Remove()
	}
	if d.mon != nil {
		d.mon.Close()
	}
}

// bootIsolated starts def's VM in a pvisor run process of its own
// (serve --isolate): its memory counted against the daemon's budget,
// its lineage and measurement log kept here as for any VM.
func (d *daemon) bootIsolated(def Definition, spec vmSpec, ent *vmEntry, kernel, initrd []byte) (vmBackend, *vmLineage, error) {
	d.mu.Lock()
	free := d.budget.Total() - d.budget.Reserved() - d.isoMem
	if spec.memBytes > free {
		d.mu.Unlock()
		return nil, nil, errorf(409, "%d MiB of memory asked, %d MiB left in the daemon's budget", spec.memBytes>>20, free>>20)
	}
	d.isoMem += spec.memBytes
	d.mu.Unlock()
	release := func() {
		d.mu.Lock()
		d.isoMem -= spec.memBytes
		d.mu.Unlock()
	}
	l, err := d.store.ForName(def.Name)
	if err != nil {
		release()
		return nil, nil, err
	}
	mlog, err := buildMeasurementLog(spec, kernel, initrd)
	if err != nil {
		release()
		return nil, nil, errorf(400, "%v", err)
	}
	// One directory per VM for its control socket and its snapshots:
	// what its sandbox may write, apart from its lineage.
	run := filepath.Join(d.dir, "run", def.Name)
	snaps := filepath.Join(d.dir, "snapshots", def.Name)
	for _, dir := range []string{run, snaps} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			release()
			return nil, nil, err
		}
	}
	mode := d.seccomp
	if mode == "" {
		mode = "kill"
	}
	p, err := startProcVM(def, spec, d.store.Dir(), run, snaps, d.isoGroupName(), mode, ent.con)
	if err != nil {
		release()
		return nil, nil, errorf(409, "%v", err)
	}
	p.release = release
	if d.mon != nil {
		// It is confined already (its control socket answered): the
		// monitor's counts start from the running profile.
		pid := p.cmd.Process.Pid
		if err := d.mon.Watch(pid); err == nil {
			p.watch = describeVMM(pid)
			p.unwatch = func() { d.mon.Unwatch(pid) }
		}
	}
	ent.mu.Lock()
	ent.mlog, ent.mlogLevelSet = mlog, false
	ent.mu.Unlock()
	return p, &vmLineage{l: l, name: def.Name}, nil
}

// entries lists the daemon's VMs.
func (d *daemon) entries() []*vmEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	ents := make([]*vmEntry, 0, len(d.vms))
	for _, e := range d.vms {
		ents = append(ents, e)
	}
	return ents
}

// auditLoop samples the syscall monitor's counts of every VM process
// every 200 ms until stop closes, and logs each violation in the VM's
// event log.
func (d *daemon) auditLoop(stop <-chan struct{}) {
	t := time.NewTicker(auditSample)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ents := d.entries()
		for _, e := range ents {
			e.mu.Lock()
			p, ok := e.vm.(*procVM)
			e.mu.Unlock()
			if !ok || p.watch == nil {
				continue
			}
			v := p.watch.step(d.mon)
			if len(v) == 0 {
				continue
			}
			var n uint64
			for _, x := range v {
				n += x.Count
			}
			p.violations.Add(n)
			e.log(lineage.Event{VM: e.rec.Definition.Name, Event: "syscall-violation", Detail: violationDetail(p.watch, v)})
		}
	}
}

// isoGroupName is the control group the daemon's VM processes go under.
func (d *daemon) isoGroupName() string { return fmt.Sprintf("pvisor-serve-%d", os.Getpid()) }

// running returns ent's VM, or a 409 if it is not running.
func (ent *vmEntry) running() (vmBackend, error) {
	ent.mu.Lock()
	defer ent.mu.Unlock()
	if ent.vm == nil {
		return nil, errorf(409, "VM %q is not running", ent.rec.Definition.Name)
	}
	return ent.vm, nil
}

// touch records activity on ent (console input, a start or resume).
func (ent *vmEntry) touch() {
	ent.mu.Lock()
	ent.rec.Status.LastActive = time.Now().UTC()
	ent.mu.Unlock()
}

// log records e in ent's event log (nothing if it never ran).
func (ent *vmEntry) log(e lineage.Event) error {
	ent.mu.Lock()
	lin := ent.lin
	ent.mu.Unlock()
	return lin.log(e)
}
