package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/lineage"
	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/hv/virtio"
)

// The control socket: `pvisor run --control PATH` listens on a Unix socket
// and `pvisor ctl --control PATH ...` talks to it, one JSON request and one
// JSON reply per line. It is how an operator looks at and changes running
// VMs (as xl does for Xen): list, sched-credit, mem-set, pause, resume,
// snapshot, device-attach, device-detach, device-limits, stop.

func init() {
	register(command{"ctl", "look at and change the VMs of a running pvisor (list, sched-credit, mem-set, pause, resume, snapshot, patch-level, device-*, grant, revoke, stop)", runCtl})
}

type ctlRequest struct {
	Op     string `json:"op"`
	VM     string `json:"vm,omitempty"`
	Weight *int   `json:"weight,omitempty"`
	Cap    *int   `json:"cap,omitempty"`
	Bytes  uint64 `json:"bytes,omitempty"`
	// device-attach: one of Disk (a --disk value), Net (a --net value) or
	// RNG. device-detach and device-limits: Device (a slot in pv mode, a
	// virtio-mmio window index otherwise), Force, Limits (bw=, iops=, ops=).
	Disk   string `json:"disk,omitempty"`
	Net    string `json:"net,omitempty"`
	RNG    bool   `json:"rng,omitempty"`
	Device *int   `json:"device,omitempty"`
	Force  bool   `json:"force,omitempty"`
	Limits string `json:"limits,omitempty"`
	// snapshot: Path (absolute, on the host of pvisor run), LeavePaused,
	// and a key (KeyFile or PassphraseFile) for the HMAC form, or the
	// encrypted form with Encrypt.
	Path           string `json:"path,omitempty"`
	LeavePaused    bool   `json:"leave_paused,omitempty"`
	KeyFile        string `json:"key_file,omitempty"`
	PassphraseFile string `json:"passphrase_file,omitempty"`
	Encrypt        bool   `json:"encrypt,omitempty"`
	// patch-level: Level.
	Level uint64 `json:"level,omitempty"`
	// grant, revoke: VM (the monitor) may read Target (introspection).
	Target string `json:"target,omitempty"`
}

type ctlVM struct {
	Name      string  `json:"name"`
	State     string  `json:"state"`
	Weight    int     `json:"weight"`
	Cap       int     `json:"cap"`
	CPUSec    float64 `json:"cpu_s"`
	StealSec  float64 `json:"steal_s"`
	Reserved  uint64  `json:"mem_reserved"`
	Resident  uint64  `json:"mem_resident"`
	Ballooned uint64  `json:"mem_ballooned"`
	Target    uint64  `json:"mem_target"`
	// Devices are all of the VM's devices with their transports
	// (hv.VM.Inventory: "legacy-pc com1 0x03f8-0x03ff (port I/O)",
	// "virtio-blk 0 mmio 0xd0000000-0xd0000fff irq 5 (virtio-mmio)").
	Devices []string `json:"devices,omitempty"`
	// Generation is the VM generation ID in hex: new at every restore.
	Generation string `json:"generation"`
	// Lineage is the VM's lineage ID in hex; PatchLevel its patch level
	// (0: none declared or set), LineageHighest the lineage's highest,
	// Release what the guest declared with its level. RolledBack: restored
	// below the lineage's level with --allow-rollback; Restored: from a
	// snapshot.
	Lineage        string `json:"lineage"`
	PatchLevel     uint64 `json:"patch_level"`
	LineageHighest uint64 `json:"lineage_highest"`
	Release        string `json:"release,omitempty"`
	Restored       bool   `json:"restored,omitempty"`
	RolledBack     bool   `json:"rolled_back,omitempty"`
	// Introspects are the introspection grants the VM holds: "TARGET
	// (handle N)".
	Introspects []string `json:"introspects,omitempty"`
}

type ctlReply struct {
	Error string  `json:"error,omitempty"`
	VMs   []ctlVM `json:"vms,omitempty"`
	// Stats is the VM's counters (stats).
	Stats *ctlStats `json:"stats,omitempty"`
	// SnapshotID and PatchLevel describe the snapshot written (snapshot).
	SnapshotID string  `json:"snapshot_id,omitempty"`
	PatchLevel *uint64 `json:"patch_level,omitempty"`
	// Slot is where device-attach put the device.
	Slot *int `json:"slot,omitempty"`
	// Handle is the introspection grant's handle (grant).
	Handle *uint32 `json:"handle,omitempty"`
}

// controlServer answers requests about a fixed set of VMs.
type controlServer struct {
	ln   net.Listener
	path string
	fi   os.FileInfo // the socket file it made
	vms  []*hv.VM
	lins []*vmLineage // each VM's lineage (nil entries: none), for its events
}

// listenControl opens the control socket at path. Nothing but a stale
// socket (one nobody listens on, left by a pvisor that is gone) is ever
// replaced: a live socket, and anything that is not a socket, is refused.
func listenControl(path string, vms []*hv.VM) (*controlServer, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is a %s, not a socket: pass a new path for the control socket", path, fileType(fi.Mode()))
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another pvisor is listening there: pass another path", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale socket %s: %v", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The listener's Close must not unlink a path that may by then be
	// someone else's: Close removes the socket only if it is still ours.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &controlServer{ln: ln, path: path, fi: fi, vms: vms}
	go s.serve()
	return s, nil
}

// Close stops listening and removes the socket file, if it is still the
// one listenControl made.
func (s *controlServer) Close() {
	s.ln.Close()
	if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.fi) {
		os.Remove(s.path)
	}
}

func (s *controlServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.conn(c)
	}
}

func (s *controlServer) conn(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req ctlRequest
		var rep ctlReply
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			rep.Error = "bad request: " + err.Error()
		} else if err := s.do(&req, &rep); err != nil {
			rep.Error = err.Error()
		}
		if enc.Encode(&rep) != nil {
			return
		}
	}
}

func (s *controlServer) find(name string) (*hv.VM, error) {
	for _, vm := range s.vms {
		if vm.Name() == name {
			return vm, nil
		}
	}
	return nil, fmt.Errorf("no VM named %q", name)
}

func (s *controlServer) do(req *ctlRequest, rep *ctlReply) error {
	if req.Op == "list" {
		for _, vm := range s.vms {
			rep.VMs = append(rep.VMs, describe(vm))
		}
		return nil
	}
	vm, err := s.find(req.VM)
	if err != nil {
		return err
	}
	switch req.Op {
	case "sched-credit":
		if req.Weight == nil && req.Cap == nil {
			return errors.New("sched-credit: give a weight, a cap or both")
		}
		if req.Weight != nil {
			if err := vm.SetCPUWeight(*req.Weight); err != nil {
				return err
			}
		}
		if req.Cap != nil {
			if err := vm.SetCPUCap(*req.Cap); err != nil {
				return err
			}
		}
	case "mem-set":
		if err := vm.SetMemTarget(req.Bytes); err != nil {
			return err
		}
	case "pause":
		if err := vm.Pause(); err != nil {
			return fmt.Errorf("pause %s: %v", vm.Name(), err)
		}
	case "resume":
		if err := vm.Resume(); err != nil {
			return fmt.Errorf("resume %s: %v", vm.Name(), err)
		}
	case "device-attach":
		slot, err := attachDevice(vm, req)
		if err != nil {
			return fmt.Errorf("device-attach %s: %v", vm.Name(), sandboxHint(err))
		}
		rep.Slot = &slot
	case "device-detach":
		if req.Device == nil {
			return errors.New("device-detach: give the device's slot")
		}
		if err := vm.EjectDevice(*req.Device, req.Force); err != nil {
			return fmt.Errorf("device-detach %s: %v", vm.Name(), err)
		}
	case "device-limits":
		if req.Device == nil {
			return errors.New("device-limits: give the device")
		}
		l, err := parseLimits(req.Limits)
		if err != nil {
			return fmt.Errorf("device-limits: %v", err)
		}
		if err := vm.SetDeviceLimits(*req.Device, l); err != nil {
			return fmt.Errorf("device-limits %s: %v", vm.Name(), err)
		}
	case "snapshot":
		h, err := ctlSnapshot(vm, req)
		if err != nil {
			return fmt.Errorf("snapshot %s: %v", vm.Name(), sandboxHint(err))
		}
		if err := s.lineageOf(vm).log(lineage.Event{Event: "snapshot", Snapshot: hex.EncodeToString(h.SnapshotID[:]), Path: req.Path, Level: h.PatchLevel}); err != nil {
			return fmt.Errorf("snapshot %s: written to %s, but not logged: %v", vm.Name(), req.Path, err)
		}
		rep.SnapshotID, rep.PatchLevel = hex.EncodeToString(h.SnapshotID[:]), &h.PatchLevel
	case "stats":
		rep.Stats = vmStats(vm)
	case "patch-level":
		if err := vm.SetPatchLevel(req.Level); err != nil {
			return fmt.Errorf("patch-level %s: %v", vm.Name(), err)
		}
	case "grant", "revoke":
		h, err := s.introspectGrant(req.Op, vm, req.Target)
		if err != nil {
			return err
		}
		if req.Op == "grant" {
			rep.Handle = &h
		}
	case "stop":
		vm.Stop(0, "stopped by the operator (pvisor ctl stop)")
	default:
		return fmt.Errorf("unknown op %q: want list, sched-credit, mem-set, pause, resume, snapshot, patch-level, device-attach, device-detach, device-limits, grant, revoke or stop", req.Op)
	}
	rep.VMs = []ctlVM{describe(vm)}
	return nil
}

// introspectGrant is `grant M introspect T` (op "grant") and `revoke M
// introspect T`: monitor gets (or loses) read-only introspection of the
// VM named target. Each is an event in both VMs' logs; a grant that
// cannot be logged is taken back, so every grant in force is on record.
func (s *controlServer) introspectGrant(op string, monitor *hv.VM, target string) (uint32, error) {
	t, err := s.find(target)
	if err != nil {
		return 0, fmt.Errorf("%s %s introspect %q: %v", op, monitor.Name(), target, err)
	}
	events := func(h uint32) (lineage.Event, lineage.Event) {
		if op == "grant" {
			return lineage.Event{Event: "grant", Detail: fmt.Sprintf("introspect: may read the memory and registers of %s (handle %d)", t.Name(), h)},
				lineage.Event{Event: "grant", Detail: fmt.Sprintf("introspect: memory and registers readable by %s (handle %d)", monitor.Name(), h)}
		}
		return lineage.Event{Event: "revoke", Detail: "introspect: may no longer read " + t.Name()},
			lineage.Event{Event: "revoke", Detail: "introspect: no longer readable by " + monitor.Name()}
	}
	var h uint32
	if op == "grant" {
		if h, err = hv.Grant(monitor, t); err != nil {
			return 0, fmt.Errorf("grant %s introspect %s: %v", monitor.Name(), t.Name(), err)
		}
	} else if err := hv.Revoke(monitor, t); err != nil {
		return 0, fmt.Errorf("revoke %s introspect %s: %v", monitor.Name(), t.Name(), err)
	}
	me, te := events(h)
	lerr := s.lineageOf(monitor).log(me)
	if lerr == nil {
		lerr = s.lineageOf(t).log(te)
	}
	if lerr != nil && op == "grant" {
		hv.Revoke(monitor, t)
		return 0, fmt.Errorf("grant %s introspect %s: not given, it could not be logged: %v", monitor.Name(), t.Name(), lerr)
	}
	if lerr != nil {
		return 0, fmt.Errorf("revoke %s introspect %s: revoked, but not logged: %v", monitor.Name(), t.Name(), lerr)
	}
	return h, nil
}

// lineageOf is vm's lineage, nil if it has none.
func (s *controlServer) lineageOf(vm *hv.VM) *vmLineage {
	for i, v := range s.vms {
		if v == vm && i < len(s.lins) {
			return s.lins[i]
		}
	}
	return nil
}

// ctlSnapshot is the snapshot request: vm's snapshot in a new file. It
// returns the snapshot's header.
func ctlSnapshot(vm *hv.VM, req *ctlRequest) (snapshot.Header, error) {
	var h snapshot.Header
	if req.Path == "" {
		return h, errors.New("give the snapshot's path")
	}
	key, err := loadKey(req.KeyFile, req.PassphraseFile)
	if err != nil {
		return h, err
	}
	opt := hv.SnapshotOptions{LeavePaused: req.LeavePaused, Written: &h}
	switch {
	case req.Encrypt && key == nil:
		return h, errors.New("an encrypted snapshot needs --key-file or --passphrase-file")
	case req.Encrypt:
		opt.File = snapshot.Options{Protection: snapshot.Encrypted, Key: key}
	case key != nil:
		opt.File = snapshot.Options{Protection: snapshot.MAC, Key: key}
	}
	return h, writeSnapshotFile(vm, req.Path, opt)
}

func describe(vm *hv.VM) ctlVM {
	cs, ms := vm.CPUStats(), vm.MemStats()
	d := ctlVM{Name: vm.Name(), State: "running", Weight: cs.Weight, Cap: cs.Cap, CPUSec: cs.CPU.Seconds(),
		Reserved: ms.Reserved, Resident: ms.Resident, Ballooned: ms.Ballooned, Target: ms.Target}
	switch {
	case vm.Stopped():
		d.State = "stopped"
	case vm.Paused():
		d.State = "paused"
	}
	for _, v := range cs.VCPUs {
		d.StealSec += v.Steal.Seconds()
	}
	d.Devices = vm.Inventory()
	d.Generation = generation(vm)
	l := vm.Lineage()
	d.Lineage = hex.EncodeToString(l.ID[:])
	d.PatchLevel, d.LineageHighest, d.Release, d.Restored, d.RolledBack = l.PatchLevel, l.Highest, l.Release, l.Restored, l.RolledBack
	for _, g := range vm.Grants() {
		d.Introspects = append(d.Introspects, fmt.Sprintf("%s (handle %d)", g.Target.Name(), g.Handle))
	}
	return d
}

// runCtl is `pvisor ctl`: one request to a running pvisor.
func runCtl(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("control", "", "the control socket of a `pvisor run --control PATH`")
	weight := fs.Int("weight", -1, "sched-credit: new CPU weight")
	capPct := fs.Int("cap", -1, "sched-credit: new CPU cap, percent of one host CPU (0 = none)")
	force := fs.Bool("force", false, "device-detach: remove the device at once instead of asking the guest to give it up")
	leavePaused := fs.Bool("leave-paused", false, "snapshot: leave the VM paused afterwards")
	keyFile := fs.String("key-file", "", "snapshot: authenticate it (HMAC-SHA-256) with the 32-byte key in this file (mode 0600)")
	passFile := fs.String("passphrase-file", "", "snapshot: authenticate it with a key derived (argon2id) from the first line of this file")
	encrypt := fs.Bool("encrypt", false, "snapshot: encrypt it (AES-256-GCM) with --key-file or --passphrase-file")
	logFile := fs.String("log", "", "restore: the new pvisor's console and messages (default: the control socket's path + .log)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pvisor ctl --control PATH list\n"+
			"       pvisor ctl --control PATH [--weight N] [--cap PCT] sched-credit VM\n"+
			"       pvisor ctl --control PATH mem-set VM SIZE\n"+
			"       pvisor ctl --control PATH pause|resume|stop VM\n"+
			"       pvisor ctl --control PATH patch-level VM N\n"+
			"       pvisor ctl --control PATH grant|revoke MONITOR introspect TARGET   (MONITOR may read TARGET's memory and registers)\n"+
			"       pvisor ctl --control PATH [--log FILE] restore SNAP [pvisor run --restore flags...]\n"+
			"       pvisor ctl --control PATH [--leave-paused] [--key-file F | --passphrase-file F [--encrypt]] snapshot VM FILE\n"+
			"       pvisor ctl --control PATH device-attach VM disk=PATH[,ro][,bw=..][,iops=..] | net=segment=NAME[,mac=..][,bw=..][,ops=..] | rng\n"+
			"       pvisor ctl --control PATH [--force] device-detach VM SLOT\n"+
			"       pvisor ctl --control PATH device-limits VM DEVICE [bw=SIZE/s][,iops=N/s][,ops=N/s]   (none: unlimited)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	a := fs.Args()
	if *path == "" || len(a) == 0 {
		fs.Usage()
		return 2
	}
	if a[0] == "restore" {
		if len(a) < 2 {
			fs.Usage()
			return 2
		}
		return ctlRestore(*path, *logFile, a[1], a[2:], stdout, stderr)
	}
	req := ctlRequest{Op: a[0]}
	want := 2
	switch a[0] {
	case "list":
		want = 1
	case "sched-credit":
		if *weight >= 0 {
			req.Weight = weight
		}
		if *capPct >= 0 {
			req.Cap = capPct
		}
	case "mem-set":
		want = 3
		if len(a) == 3 {
			n, err := parseSize(a[2])
			if err != nil {
				fmt.Fprintf(stderr, "pvisor ctl: mem-set: %v\n", err)
				return 2
			}
			req.Bytes = n
		}
	case "pause", "resume", "stop":
	case "grant", "revoke":
		want = 4
		if len(a) == 4 {
			if a[2] != "introspect" {
				fmt.Fprintf(stderr, "pvisor ctl: %s %s %q: the only right is introspect (%s MONITOR introspect TARGET)\n", a[0], a[1], a[2], a[0])
				return 2
			}
			req.Target = a[3]
		}
	case "patch-level":
		want = 3
		if len(a) == 3 {
			n, err := parsePatchLevel(a[2])
			if err != nil {
				fmt.Fprintf(stderr, "pvisor ctl: %v\n", err)
				return 2
			}
			req.Level = n
		}
	case "snapshot":
		want = 3
		if len(a) == 3 {
			p, err := filepath.Abs(a[2])
			if err != nil {
				fmt.Fprintf(stderr, "pvisor ctl: snapshot: %v\n", err)
				return 2
			}
			req.Path = p
		}
		req.LeavePaused, req.Encrypt = *leavePaused, *encrypt
		for _, f := range []*string{keyFile, passFile} {
			if *f != "" {
				p, err := filepath.Abs(*f)
				if err != nil {
					fmt.Fprintf(stderr, "pvisor ctl: snapshot: %v\n", err)
					return 2
				}
				*f = p
			}
		}
		req.KeyFile, req.PassphraseFile = *keyFile, *passFile
	case "device-attach":
		want = 3
		if len(a) == 3 {
			switch v := a[2]; {
			case v == "rng":
				req.RNG = true
			case strings.HasPrefix(v, "disk="):
				req.Disk = strings.TrimPrefix(v, "disk=")
			case strings.HasPrefix(v, "net="):
				req.Net = strings.TrimPrefix(v, "net=")
			default:
				fmt.Fprintf(stderr, "pvisor ctl: device-attach %q: want disk=..., net=... or rng\n", v)
				return 2
			}
		}
	case "device-detach", "device-limits":
		want = 3
		if a[0] == "device-limits" && len(a) == 4 {
			want = 4
			req.Limits = a[3]
		}
		if len(a) >= 3 {
			n, err := strconv.Atoi(a[2])
			if err != nil || n < 0 {
				fmt.Fprintf(stderr, "pvisor ctl: %s: device %q: want a slot or window number\n", a[0], a[2])
				return 2
			}
			req.Device = &n
		}
		req.Force = *force
	default:
		fmt.Fprintf(stderr, "pvisor ctl: unknown request %q\n", a[0])
		fs.Usage()
		return 2
	}
	if len(a) != want {
		fs.Usage()
		return 2
	}
	if want > 1 {
		req.VM = a[1]
	}
	timeout := 10 * time.Second
	if req.Op == "snapshot" {
		timeout = 10 * time.Minute // the whole of the VM's memory is written
	}
	rep, err := ctlCall(*path, &req, timeout)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor ctl: %v\n", err)
		return 1
	}
	if rep.Error != "" {
		fmt.Fprintf(stderr, "pvisor ctl: %s\n", rep.Error)
		return 1
	}
	if rep.Slot != nil {
		fmt.Fprintf(stdout, "%s: slot %d\n", req.VM, *rep.Slot)
		return 0
	}
	if rep.Handle != nil {
		fmt.Fprintf(stdout, "%s may read %s: introspection grant handle %d\n", req.VM, req.Target, *rep.Handle)
		return 0
	}
	if req.Op != "list" {
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "name\tstate\tweight\tcap\tcpu s\tsteal s\tmem MiB\tresident MiB\tballooned MiB\ttarget MiB\tgeneration\t")
	for _, v := range rep.VMs {
		capS := "-"
		if v.Cap > 0 {
			capS = strconv.Itoa(v.Cap) + "%"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.3f\t%.3f\t%d\t%d\t%d\t%d\t%s\t\n", v.Name, v.State, v.Weight, capS, v.CPUSec, v.StealSec,
			v.Reserved>>20, v.Resident>>20, v.Ballooned>>20, v.Target>>20, v.Generation)
	}
	tw.Flush()
	for _, v := range rep.VMs {
		line := fmt.Sprintf("%s: lineage %s, patch level %d, lineage's highest %d", v.Name, v.Lineage, v.PatchLevel, v.LineageHighest)
		if v.Release != "" {
			line += fmt.Sprintf(", release %q", v.Release)
		}
		if v.Restored {
			line += ", restored"
		}
		if v.RolledBack {
			line += ", ROLLED BACK (restored below its lineage's patch level with --allow-rollback)"
		}
		fmt.Fprintln(stdout, line)
		for _, d := range v.Devices {
			fmt.Fprintf(stdout, "%s: %s\n", v.Name, d)
		}
		for _, g := range v.Introspects {
			fmt.Fprintf(stdout, "%s: may read %s: introspection\n", v.Name, g)
		}
	}
	return 0
}

// attachDevice hot-plugs the device req names into vm, checking the
// operator's values as pvisor run does.
func attachDevice(vm *hv.VM, req *ctlRequest) (int, error) {
	n := 0
	for _, b := range []bool{req.Disk != "", req.Net != "", req.RNG} {
		if b {
			n++
		}
	}
	if n != 1 {
		return 0, errors.New("give exactly one of disk=, net= or rng")
	}
	switch {
	case req.Disk != "":
		d, err := parseDisk(req.Disk)
		if err != nil {
			return 0, err
		}
		fi, err := os.Stat(d.Path)
		if err != nil {
			return 0, err
		}
		if err := checkFile("disk", d.Path, fi, math.MaxUint64); err != nil {
			return 0, err
		}
		return vm.AttachDisk(d)
	case req.Net != "":
		nic, err := parseNIC(req.Net)
		if err != nil {
			return 0, err
		}
		return vm.AttachNIC(nic)
	}
	return vm.AttachDevice("virtio-rng (hot-plugged)", virtio.Rng{}, nil)
}

// parseLimits reads device-limits' value: bw=SIZE/s, iops=N/s (a disk's
// requests) and ops=N/s (a NIC's frames), comma-separated, each optional;
// empty is unlimited.
func parseLimits(v string) (virtio.Limits, error) {
	var l virtio.Limits
	if v == "" {
		return l, nil
	}
	seen := map[string]bool{}
	for _, item := range strings.Split(v, ",") {
		key, val, _ := strings.Cut(item, "=")
		if seen[key] {
			return l, fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		val = strings.TrimSuffix(val, "/s")
		switch key {
		case "bw":
			b, err := parseSize(val)
			if err != nil || b == 0 {
				return l, fmt.Errorf("bw %q: want a positive size per second, such as bw=10M/s", val)
			}
			l.BytesPerSec = b
		case "iops", "ops":
			if seen["iops"] && seen["ops"] {
				return l, errors.New("iops and ops are the same limit: give one")
			}
			o, err := strconv.ParseUint(val, 10, 64)
			if err != nil || o == 0 {
				return l, fmt.Errorf("%s %q: want a positive number per second", key, val)
			}
			l.OpsPerSec = o
		default:
			return l, fmt.Errorf("unknown limit %q: want bw=, iops= or ops=", item)
		}
	}
	return l, nil
}

// ctlCall sends one request and reads its reply.
func ctlCall(path string, req *ctlRequest, timeout time.Duration) (*ctlReply, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("no pvisor at %s: %v", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, err
	}
	var rep ctlReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		return nil, fmt.Errorf("reading the reply: %v", err)
	}
	return &rep, nil
}
