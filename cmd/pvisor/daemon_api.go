package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/lineage"
)

// The daemon's HTTP/JSON API (docs/api.md, docs/openapi.json). Every
// request body is one JSON object of at most maxBody bytes with no
// unknown field; every error is {"error": "..."} with a 4xx status for
// the client's mistakes (400 malformed, 404 no such VM, 409 the VM's state
// does not allow it) and 5xx for the daemon's.

// apiVersion prefixes every path.
const apiVersion = "/v1"

// maxBody bounds a request body.
const maxBody = 64 << 10

// apiVM is a VM in the inventory.
type apiVM struct {
	Name       string     `json:"name"`
	State      string     `json:"state"` // stopped, running, paused
	Mode       string     `json:"mode"`
	VCPUs      int        `json:"vcpus"`
	MemBytes   uint64     `json:"mem_bytes"`    // defined memory
	Reserved   uint64     `json:"mem_reserved"` // while running
	Resident   uint64     `json:"mem_resident"`
	Target     uint64     `json:"mem_target,omitempty"`
	Weight     int        `json:"cpu_weight"`
	Cap        int        `json:"cpu_cap"`
	CPUSec     float64    `json:"cpu_s"`
	StealSec   float64    `json:"steal_s"`
	Owner      string     `json:"owner,omitempty"`
	Created    time.Time  `json:"created"`
	LastActive *time.Time `json:"last_active,omitempty"`
	IdleSec    float64    `json:"idle_s"`
	LastExit   string     `json:"last_exit,omitempty"`
	Generation string     `json:"generation,omitempty"`
	Lineage    string     `json:"lineage,omitempty"`
	PatchLevel uint64     `json:"patch_level"`
	Highest    uint64     `json:"lineage_highest"`
	RolledBack bool       `json:"rolled_back,omitempty"`
	Snapshots  int        `json:"snapshots"`
	Devices    []string   `json:"devices,omitempty"`
	Definition Definition `json:"definition"`
}

// describe is ent as the API shows it.
func (ent *vmEntry) describe() apiVM {
	ent.mu.Lock()
	rec, vm := ent.rec, ent.vm
	ent.mu.Unlock()
	spec := rec.Definition.summary()
	a := apiVM{Name: rec.Definition.Name, State: stateStopped, Mode: spec.mode.String(), VCPUs: spec.vcpus,
		MemBytes: spec.memBytes, Weight: spec.weight, Cap: spec.cap, Owner: rec.Definition.Owner,
		Created: rec.Status.Created, LastExit: rec.Status.LastExit, Snapshots: len(rec.Status.Snapshots),
		Definition: rec.Definition}
	if !rec.Status.LastActive.IsZero() {
		t := rec.Status.LastActive
		a.LastActive = &t
		a.IdleSec = time.Since(t).Seconds()
	}
	if vm != nil {
		a.State = stateRunning
		if vm.Paused() {
			a.State = statePaused
		}
		cs, ms := vm.CPUStats(), vm.MemStats()
		a.Weight, a.Cap, a.CPUSec = cs.Weight, cs.Cap, cs.CPU.Seconds()
		for _, v := range cs.VCPUs {
			a.StealSec += v.Steal.Seconds()
		}
		a.Reserved, a.Resident, a.Target = ms.Reserved, ms.Resident, ms.Target
		a.Generation = generation(vm)
		l := vm.Lineage()
		a.Lineage = hex.EncodeToString(l.ID[:])
		a.PatchLevel, a.Highest, a.RolledBack = l.PatchLevel, l.Highest, l.RolledBack
		a.Devices = vm.Inventory()
	}
	return a
}

// restoreRequest is POST /v1/vms/{name}/restore.
type restoreRequest struct {
	// Snapshot is the snapshot file; empty: the VM's latest.
	Snapshot       string `json:"snapshot,omitempty"`
	AllowRollback  bool   `json:"allow_rollback,omitempty"`
	Paused         bool   `json:"paused,omitempty"`
	KeyFile        string `json:"key_file,omitempty"`
	PassphraseFile string `json:"passphrase_file,omitempty"`
}

// snapshotRequest is POST /v1/vms/{name}/snapshots.
type snapshotRequest struct {
	// Path is the new file; empty: state-dir/daemon/snapshots/NAME/TIME.snap.
	Path           string `json:"path,omitempty"`
	LeavePaused    bool   `json:"leave_paused,omitempty"`
	Encrypt        bool   `json:"encrypt,omitempty"`
	KeyFile        string `json:"key_file,omitempty"`
	PassphraseFile string `json:"passphrase_file,omitempty"`
}

// memoryRequest is PUT /v1/vms/{name}/memory.
type memoryRequest struct {
	Target string `json:"target"` // a size: K, M or G suffix
}

// schedRequest is PUT /v1/vms/{name}/sched.
type schedRequest struct {
	Weight *int `json:"cpu_weight,omitempty"`
	Cap    *int `json:"cpu_cap,omitempty"`
}

// deviceRequest is POST /v1/vms/{name}/devices: exactly one of them.
type deviceRequest struct {
	Disk string `json:"disk,omitempty"`
	Net  string `json:"net,omitempty"`
	RNG  bool   `json:"rng,omitempty"`
}

// patchLevelRequest is PUT /v1/vms/{name}/patch-level.
type patchLevelRequest struct {
	Level uint64 `json:"level"`
}

// apiRoutes are the API's routes, as the OpenAPI file lists them
// (TestOpenAPIMatchesRoutes).
var apiRoutes = []string{
	"GET /v1/version",
	"GET /v1/vms",
	"POST /v1/vms",
	"GET /v1/vms/{name}",
	"DELETE /v1/vms/{name}",
	"POST /v1/vms/{name}/start",
	"POST /v1/vms/{name}/stop",
	"POST /v1/vms/{name}/pause",
	"POST /v1/vms/{name}/resume",
	"POST /v1/vms/{name}/restore",
	"GET /v1/vms/{name}/snapshots",
	"POST /v1/vms/{name}/snapshots",
	"PUT /v1/vms/{name}/memory",
	"PUT /v1/vms/{name}/sched",
	"PUT /v1/vms/{name}/patch-level",
	"POST /v1/vms/{name}/devices",
	"DELETE /v1/vms/{name}/devices/{slot}",
	"GET /v1/vms/{name}/console",
	"GET /v1/vms/{name}/logs",
	"GET /v1/vms/{name}/events",
	"GET /v1/vms/{name}/stats",
	"GET /v1/stats",
	"POST /v1/vms/{name}/grants",
	"DELETE /v1/vms/{name}/grants/{target}",
	"POST /v1/vms/{name}/attest",
}

// grantRequest is POST /v1/vms/{name}/grants: VM name may read Target.
type grantRequest struct {
	Kind   string `json:"kind"` // "introspect"
	Target string `json:"target"`
}

// handler is the API.
func (d *daemon) handler() http.Handler {
	mux := http.NewServeMux()
	h := map[string]func(w http.ResponseWriter, r *http.Request) (any, error){
		"GET /v1/version": func(w http.ResponseWriter, r *http.Request) (any, error) {
			return map[string]any{"pvisor": version, "api": 1}, nil
		},
		"GET /v1/vms": func(w http.ResponseWriter, r *http.Request) (any, error) { return d.list(), nil },
		"POST /v1/vms": func(w http.ResponseWriter, r *http.Request) (any, error) {
			var def Definition
			if err := decode(r, &def); err != nil {
				return nil, err
			}
			ent, err := d.create(def)
			if err != nil {
				return nil, err
			}
			w.WriteHeader(http.StatusCreated)
			return ent.describe(), nil
		},
		"GET /v1/vms/{name}": d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) { return ent.describe(), nil }),
		"DELETE /v1/vms/{name}": d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) {
			if err := d.destroy(ent); err != nil {
				return nil, err
			}
			return map[string]string{"destroyed": ent.rec.Definition.Name}, nil
		}),
		"POST /v1/vms/{name}/start": d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) {
			if err := noBody(r); err != nil {
				return nil, err
			}
			if err := d.start(ent, nil); err != nil {
				return nil, err
			}
			return ent.describe(), nil
		}),
		"POST /v1/vms/{name}/stop": d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) {
			if err := noBody(r); err != nil {
				return nil, err
			}
			if err := d.stop(ent, "stopped by the operator (pvisor stop)"); err != nil {
				return nil, err
			}
			return ent.describe(), nil
		}),
		"POST /v1/vms/{name}/pause": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			if err := noBody(r); err != nil {
				return nil, err
			}
			if err := vm.Pause(); err != nil {
				return nil, errorf(409, "pause: %v", err)
			}
			ent.log(lineage.Event{Event: "paused"})
			return ent.describe(), nil
		}),
		"POST /v1/vms/{name}/resume": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			if err := noBody(r); err != nil {
				return nil, err
			}
			if err := vm.Resume(); err != nil {
				return nil, errorf(409, "resume: %v", err)
			}
			ent.touch()
			ent.log(lineage.Event{Event: "resumed"})
			return ent.describe(), nil
		}),
		"POST /v1/vms/{name}/restore": d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) {
			var req restoreRequest
			if err := decode(r, &req); err != nil {
				return nil, err
			}
			if req.Snapshot == "" {
				ent.mu.Lock()
				if n := len(ent.rec.Status.Snapshots); n > 0 {
					req.Snapshot = ent.rec.Status.Snapshots[n-1].Path
				}
				ent.mu.Unlock()
				if req.Snapshot == "" {
					return nil, errorf(409, "VM %q has no snapshot: give one", ent.rec.Definition.Name)
				}
			}
			if err := absPaths(&req.Snapshot, &req.KeyFile, &req.PassphraseFile); err != nil {
				return nil, err
			}
			if err := d.start(ent, &req); err != nil {
				return nil, err
			}
			return ent.describe(), nil
		}),
		"GET /v1/vms/{name}/snapshots": d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) {
			ent.mu.Lock()
			defer ent.mu.Unlock()
			return append([]snapshotInfo{}, ent.rec.Status.Snapshots...), nil
		}),
		"POST /v1/vms/{name}/snapshots": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			var req snapshotRequest
			if err := decode(r, &req); err != nil {
				return nil, err
			}
			info, err := d.snapshot(ent, vm, req)
			if err != nil {
				return nil, err
			}
			w.WriteHeader(http.StatusCreated)
			return info, nil
		}),
		"PUT /v1/vms/{name}/memory": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			var req memoryRequest
			if err := decode(r, &req); err != nil {
				return nil, err
			}
			n, err := parseSize(req.Target)
			if err != nil {
				return nil, errorf(400, "target: %v", err)
			}
			if err := vm.SetMemTarget(n); err != nil {
				return nil, errorf(409, "%v", err)
			}
			return ent.describe(), nil
		}),
		"PUT /v1/vms/{name}/sched": d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) {
			var req schedRequest
			if err := decode(r, &req); err != nil {
				return nil, err
			}
			return d.setSched(ent, req)
		}),
		"POST /v1/vms/{name}/attest": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			return d.quote(ent, vm, r)
		}),
		"PUT /v1/vms/{name}/patch-level": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			var req patchLevelRequest
			if err := decode(r, &req); err != nil {
				return nil, err
			}
			if err := vm.SetPatchLevel(req.Level); err != nil {
				return nil, errorf(400, "%v", err)
			}
			return ent.describe(), nil
		}),
		"POST /v1/vms/{name}/devices": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			var req deviceRequest
			if err := decode(r, &req); err != nil {
				return nil, err
			}
			slot, err := vm.Attach(&ctlRequest{Disk: req.Disk, Net: req.Net, RNG: req.RNG})
			if err != nil {
				return nil, errorf(409, "%v", err)
			}
			ent.log(lineage.Event{Event: "device-attach", Detail: fmt.Sprintf("slot %d: %+v", slot, req)})
			return map[string]int{"slot": slot}, nil
		}),
		"DELETE /v1/vms/{name}/devices/{slot}": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			slot, err := strconv.Atoi(r.PathValue("slot"))
			if err != nil || slot < 0 {
				return nil, errorf(400, "slot %q: want a slot number", r.PathValue("slot"))
			}
			force := r.URL.Query().Get("force") == "true"
			if err := vm.EjectDevice(slot, force); err != nil {
				return nil, errorf(409, "%v", err)
			}
			ent.log(lineage.Event{Event: "device-detach", Detail: fmt.Sprintf("slot %d", slot)})
			return ent.describe(), nil
		}),
		"GET /v1/vms/{name}/logs": d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(ent.con.backlog())
			return nil, nil
		}),
		"GET /v1/vms/{name}/events": d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) {
			return d.events(ent)
		}),
		"GET /v1/stats": func(w http.ResponseWriter, r *http.Request) (any, error) { return d.samples(), nil },
		"GET /v1/vms/{name}/stats": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			switch r.URL.Query().Get("format") {
			case "", "text":
				ent.mu.Lock()
				since := ent.started
				ent.mu.Unlock()
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				io.WriteString(w, vm.StatsText(since))
				return nil, nil
			case "json":
				st := stateRunning
				if vm.Paused() {
					st = statePaused
				}
				return sampleVM(ent.rec.Definition.Name, st, vm), nil
			}
			return nil, errorf(400, "format %q: want text or json", r.URL.Query().Get("format"))
		}),
		"POST /v1/vms/{name}/grants": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			var req grantRequest
			if err := decode(r, &req); err != nil {
				return nil, err
			}
			if req.Kind != "introspect" {
				return nil, errorf(400, "grant kind %q: want introspect", req.Kind)
			}
			return d.grant(ent, vm, req.Target, true)
		}),
		"DELETE /v1/vms/{name}/grants/{target}": d.withRunning(func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error) {
			return d.grant(ent, vm, r.PathValue("target"), false)
		}),
		"GET /v1/vms/{name}/console": d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) {
			return nil, d.console(ent, w, r)
		}),
	}
	for _, route := range apiRoutes {
		fn := h[route]
		if fn == nil {
			panic("daemon: no handler for " + route) // a broken table, found by every test
		}
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			v, err := fn(w, r)
			if err != nil {
				code := 500
				var ae *apiError
				if errors.As(err, &ae) {
					code = ae.code
				}
				writeJSON(w, code, map[string]string{"error": err.Error()})
				return
			}
			if v != nil {
				writeJSON(w, 0, v)
			}
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, map[string]string{"error": fmt.Sprintf("no route %s %s: see docs/api.md", r.Method, r.URL.Path)})
	})
	return mux
}

type vmHandler func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error)

// withVM finds the VM of the path's name.
func (d *daemon) withVM(fn vmHandler) func(w http.ResponseWriter, r *http.Request) (any, error) {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		ent, err := d.get(r.PathValue("name"))
		if err != nil {
			return nil, err
		}
		return fn(ent, w, r)
	}
}

// withRunning finds the VM and requires it running (or paused).
func (d *daemon) withRunning(fn func(ent *vmEntry, vm vmBackend, w http.ResponseWriter, r *http.Request) (any, error)) func(w http.ResponseWriter, r *http.Request) (any, error) {
	return d.withVM(func(ent *vmEntry, w http.ResponseWriter, r *http.Request) (any, error) {
		vm, err := ent.running()
		if err != nil {
			return nil, err
		}
		return fn(ent, vm, w, r)
	})
}

// decode reads the request's one JSON object into v, refusing unknown
// fields, trailing data and bodies over maxBody.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(413, "request body over %d bytes", maxBody)
		}
		if err == io.EOF {
			return errorf(400, "empty request body: want a JSON object")
		}
		return errorf(400, "request body: %v", err)
	}
	if dec.More() {
		return errorf(400, "request body: more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(400, "request body: data after the JSON object")
	}
	return nil
}

// noBody refuses a body on a request that takes none.
func noBody(r *http.Request) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return errorf(400, "request body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) > 0 && strings.TrimSpace(string(b)) != "{}" {
		return errorf(400, "this request takes no body")
	}
	return nil
}

// writeJSON writes v as the reply, with status code (0: 200 unless a
// status was written).
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if code != 0 {
		w.WriteHeader(code)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// absPaths makes the non-empty paths absolute.
func absPaths(ps ...*string) error {
	for _, p := range ps {
		if *p == "" {
			continue
		}
		if !filepath.IsAbs(*p) {
			return errorf(400, "path %q is not absolute", *p)
		}
		*p = filepath.Clean(*p)
	}
	return nil
}

// snapshot writes a snapshot of ent's VM and records it.
func (d *daemon) snapshot(ent *vmEntry, vm vmBackend, req snapshotRequest) (*snapshotInfo, error) {
	if err := absPaths(&req.Path, &req.KeyFile, &req.PassphraseFile); err != nil {
		return nil, err
	}
	name := ent.rec.Definition.Name
	if req.Path == "" {
		dir := filepath.Join(d.dir, "snapshots", name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		req.Path = filepath.Join(dir, time.Now().UTC().Format("20060102T150405.000000000Z")+".snap")
	}
	id, level, err := vm.Snapshot(&ctlRequest{Path: req.Path, LeavePaused: req.LeavePaused, Encrypt: req.Encrypt,
		KeyFile: req.KeyFile, PassphraseFile: req.PassphraseFile})
	if err != nil {
		return nil, errorf(409, "snapshot: %v", err)
	}
	info := snapshotInfo{ID: id, Path: req.Path, Created: time.Now().UTC(),
		PatchLevel: level, Encrypted: req.Encrypt}
	ent.mu.Lock()
	ent.rec.Status.Snapshots = append(ent.rec.Status.Snapshots, info)
	if n := len(ent.rec.Status.Snapshots) - maxSnapshotsKept; n > 0 {
		ent.rec.Status.Snapshots = ent.rec.Status.Snapshots[n:]
	}
	err = d.save(ent)
	lin := ent.lin
	ent.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if _, isolated := vm.(*procVM); isolated {
		return &info, nil // the VM's process logged it
	}
	if err := lin.log(lineage.Event{Event: "snapshot", Snapshot: info.ID, Path: info.Path, Level: info.PatchLevel}); err != nil {
		return nil, err
	}
	return &info, nil
}

// setSched changes the definition's weight and cap, and the running
// VM's.
func (d *daemon) setSched(ent *vmEntry, req schedRequest) (any, error) {
	if req.Weight == nil && req.Cap == nil {
		return nil, errorf(400, "give cpu_weight, cpu_cap or both")
	}
	ent.mu.Lock()
	def := ent.rec.Definition
	if req.Weight != nil {
		def.Weight = *req.Weight
	}
	if req.Cap != nil {
		def.Cap = *req.Cap
	}
	if _, err := def.spec(); err != nil {
		ent.mu.Unlock()
		return nil, errorf(400, "%v", err)
	}
	vm := ent.vm
	if vm != nil {
		if req.Weight != nil {
			if err := vm.SetCPUWeight(*req.Weight); err != nil {
				ent.mu.Unlock()
				return nil, errorf(400, "%v", err)
			}
		}
		if req.Cap != nil {
			if err := vm.SetCPUCap(*req.Cap); err != nil {
				ent.mu.Unlock()
				return nil, errorf(400, "%v", err)
			}
		}
	}
	ent.rec.Definition = def
	err := d.save(ent)
	ent.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return ent.describe(), nil
}

// events returns the VM's events: its lineage's log, the lines about it.
func (d *daemon) events(ent *vmEntry) (any, error) {
	ent.mu.Lock()
	lin := ent.lin
	name := ent.rec.Definition.Name
	ent.mu.Unlock()
	if lin == nil {
		l, err := d.store.ForName(name)
		if err != nil {
			return nil, err
		}
		lin = &vmLineage{l: l, name: name}
	}
	evs, err := lin.l.Events()
	if err != nil {
		return nil, err
	}
	out := []lineage.Event{}
	for _, e := range evs {
		if e.VM == name {
			out = append(out, e)
		}
	}
	return out, nil
}

// console attaches the client to ent's console: GET with "Upgrade:
// pvisor-console" switches the connection to a raw byte stream, the
// backlog first, then live output one way and input the other. The
// client detaches by closing its side; the VM goes on.
func (d *daemon) console(ent *vmEntry, w http.ResponseWriter, r *http.Request) error {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "pvisor-console") {
		return errorf(400, "console: send Upgrade: pvisor-console (pvisor console does)")
	}
	if ent.rec.Definition.OnDemand {
		if _, err := d.ensureRunning(ent); err != nil {
			return err
		}
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return errorf(500, "console: the connection cannot be taken over")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return err
	}
	defer conn.Close()
	c, backlog := ent.con.attach()
	defer ent.con.detach(c)
	io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: pvisor-console\r\nConnection: Upgrade\r\n\r\n")
	brw.Write(backlog)
	if err := brw.Flush(); err != nil {
		return nil
	}
	ent.log(lineage.Event{Event: "console-attach"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		rd := bufio.NewReader(brw)
		buf := make([]byte, 4096)
		for {
			n, err := rd.Read(buf)
			if n > 0 {
				ent.touch()
				ent.con.input(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case p := <-c.out:
			if _, err := conn.Write(p); err != nil {
				return nil
			}
		case <-done:
			ent.log(lineage.Event{Event: "console-detach"})
			return nil
		}
	}
}

// grant gives (or, with !give, takes back) monitor VM ent the right to
// read the running VM target's memory and registers (docs/security.md,
// "Introspection"). Both VMs' logs record it; a grant that cannot be
// logged is taken back.
func (d *daemon) grant(ent *vmEntry, mon vmBackend, target string, give bool) (any, error) {
	tent, err := d.get(target)
	if err != nil {
		return nil, err
	}
	tb, err := tent.running()
	if err != nil {
		return nil, err
	}
	// Introspection reads one VM's memory from another's hypercalls: both
	// must be in the daemon's process.
	lm, ok1 := mon.(localVM)
	lt, ok2 := tb.(localVM)
	if !ok1 || !ok2 {
		return nil, errorf(409, "introspection needs both VMs in the daemon's process: not under pvisor serve --isolate")
	}
	monitor, t := lm.VM, lt.VM
	if give {
		h, err := hv.Grant(monitor, t)
		if err != nil {
			return nil, errorf(409, "grant %s introspect %s: %v", monitor.Name(), t.Name(), err)
		}
		e1 := ent.log(lineage.Event{Event: "grant", Detail: fmt.Sprintf("introspect: may read the memory and registers of %s (handle %d)", t.Name(), h)})
		e2 := tent.log(lineage.Event{Event: "grant", Detail: fmt.Sprintf("introspect: memory and registers readable by %s (handle %d)", monitor.Name(), h)})
		if e1 != nil || e2 != nil {
			hv.Revoke(monitor, t)
			return nil, fmt.Errorf("grant %s introspect %s: not given, it could not be logged: %v", monitor.Name(), t.Name(), errors.Join(e1, e2))
		}
		return map[string]any{"monitor": monitor.Name(), "target": t.Name(), "handle": h}, nil
	}
	if err := hv.Revoke(monitor, t); err != nil {
		return nil, errorf(409, "revoke %s introspect %s: %v", monitor.Name(), t.Name(), err)
	}
	e1 := ent.log(lineage.Event{Event: "revoke", Detail: "introspect: may no longer read " + t.Name()})
	e2 := tent.log(lineage.Event{Event: "revoke", Detail: "introspect: no longer readable by " + monitor.Name()})
	if err := errors.Join(e1, e2); err != nil {
		return nil, fmt.Errorf("revoke %s introspect %s: revoked, but not logged: %v", monitor.Name(), t.Name(), err)
	}
	return map[string]any{"monitor": monitor.Name(), "target": t.Name(), "revoked": true}, nil
}
