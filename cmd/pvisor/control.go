package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/pvisor/pvisor/hv"
)

// The control socket: `pvisor run --control PATH` listens on a Unix socket
// and `pvisor ctl --control PATH ...` talks to it, one JSON request and one
// JSON reply per line. It is how an operator looks at and changes running
// VMs (as xl does for Xen): list, sched-credit, mem-set, stop.

func init() {
	register(command{"ctl", "look at and change the VMs of a running pvisor (list, sched-credit, mem-set, stop)", runCtl})
}

type ctlRequest struct {
	Op     string `json:"op"`
	VM     string `json:"vm,omitempty"`
	Weight *int   `json:"weight,omitempty"`
	Cap    *int   `json:"cap,omitempty"`
	Bytes  uint64 `json:"bytes,omitempty"`
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
	// Devices are the VM's virtio devices ("virtio-blk 0 mmio 0xd0000000-0xd0000fff irq 5").
	Devices []string `json:"devices,omitempty"`
}

type ctlReply struct {
	Error string  `json:"error,omitempty"`
	VMs   []ctlVM `json:"vms,omitempty"`
}

// controlServer answers requests about a fixed set of VMs.
type controlServer struct {
	ln   net.Listener
	path string
	fi   os.FileInfo // the socket file it made
	vms  []*hv.VM
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
	case "stop":
		vm.Stop(0, "stopped by the operator (pvisor ctl stop)")
	default:
		return fmt.Errorf("unknown op %q: want list, sched-credit, mem-set or stop", req.Op)
	}
	rep.VMs = []ctlVM{describe(vm)}
	return nil
}

func describe(vm *hv.VM) ctlVM {
	cs, ms := vm.CPUStats(), vm.MemStats()
	d := ctlVM{Name: vm.Name(), State: "running", Weight: cs.Weight, Cap: cs.Cap, CPUSec: cs.CPU.Seconds(),
		Reserved: ms.Reserved, Resident: ms.Resident, Ballooned: ms.Ballooned, Target: ms.Target}
	if vm.Stopped() {
		d.State = "stopped"
	}
	for _, v := range cs.VCPUs {
		d.StealSec += v.Steal.Seconds()
	}
	for _, dev := range vm.MMIODevices() {
		desc := dev.String()
		if dev.Net != nil {
			desc += ": " + dev.Net.String()
		}
		d.Devices = append(d.Devices, desc)
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
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pvisor ctl --control PATH list\n"+
			"       pvisor ctl --control PATH [--weight N] [--cap PCT] sched-credit VM\n"+
			"       pvisor ctl --control PATH mem-set VM SIZE\n"+
			"       pvisor ctl --control PATH stop VM")
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
	case "stop":
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
	rep, err := ctlCall(*path, &req)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor ctl: %v\n", err)
		return 1
	}
	if rep.Error != "" {
		fmt.Fprintf(stderr, "pvisor ctl: %s\n", rep.Error)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "name\tstate\tweight\tcap\tcpu s\tsteal s\tmem MiB\tresident MiB\tballooned MiB\ttarget MiB\t")
	for _, v := range rep.VMs {
		capS := "-"
		if v.Cap > 0 {
			capS = strconv.Itoa(v.Cap) + "%"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.3f\t%.3f\t%d\t%d\t%d\t%d\t\n", v.Name, v.State, v.Weight, capS, v.CPUSec, v.StealSec,
			v.Reserved>>20, v.Resident>>20, v.Ballooned>>20, v.Target>>20)
	}
	tw.Flush()
	for _, v := range rep.VMs {
		for _, d := range v.Devices {
			fmt.Fprintf(stdout, "%s: %s\n", v.Name, d)
		}
	}
	return 0
}

// ctlCall sends one request and reads its reply.
func ctlCall(path string, req *ctlRequest) (*ctlReply, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("no pvisor at %s: %v", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, err
	}
	var rep ctlReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		return nil, fmt.Errorf("reading the reply: %v", err)
	}
	return &rep, nil
}
