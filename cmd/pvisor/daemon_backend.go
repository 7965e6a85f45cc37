package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
	"github.com/pvisor/pvisor/sched/cgroup"
)

// vmBackend is a running VM as the daemon drives it: in the daemon's own
// process (localVM, over *hv.VM), or in a VM process of its own under
// pvisor serve --isolate (procVM, over that process's control socket).
type vmBackend interface {
	Name() string
	Mode() cpu.Mode
	// Run waits for the VM to end.
	Run() hv.ExitStatus
	Stop(code int, reason string)
	Pause() error
	Resume() error
	Paused() bool
	SetMemTarget(bytes uint64) error
	SetPatchLevel(level uint64) error
	SetCPUWeight(w int) error
	SetCPUCap(pct int) error
	EjectDevice(slot int, force bool) error
	CPUStats() sched.VMStats
	MemStats() mm.VMStats
	StatsSnapshot() (hcalls [64]uint64, priv map[string]uint64, before uint64, pvStarted bool)
	RefusedHypercalls() uint64
	Lineage() hv.Lineage
	Inventory() []string
	LiveEngineStats(i int) cpu.Stats
	MMIODevices() []hv.MMIODevice
	SlotDevices() []hv.SlotDevice
	GenerationID() [16]byte
	// Snapshot writes a snapshot as ctl snapshot does; Attach hot-plugs
	// a device as ctl device-attach does; StatsText is pvisor run
	// --stats's report.
	Snapshot(req *ctlRequest) (id string, level uint64, err error)
	Attach(req *ctlRequest) (int, error)
	StatsText(since time.Time) string
}

// localVM is a VM in the daemon's process.
type localVM struct{ *hv.VM }

func (v localVM) Snapshot(req *ctlRequest) (string, uint64, error) {
	h, err := ctlSnapshot(v.VM, req)
	if err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("%x", h.SnapshotID[:]), h.PatchLevel, nil
}

func (v localVM) Attach(req *ctlRequest) (int, error) { return attachDevice(v.VM, req) }

func (v localVM) StatsText(since time.Time) string { return statsText(v.VM, since) }

// procVM is a VM in a pvisor run process of its own, which confines
// itself (hv/sandbox), held by its control groups to its bounds.
type procVM struct {
	name string
	mode cpu.Mode
	cmd  *exec.Cmd
	cg   *cgroup.Group
	sock string
	done chan struct{} // closed when the process has ended
	exit hv.ExitStatus // how, once done

	release func() // returns its memory to the daemon's budget, when it ends
	unwatch func() // stops the daemon's syscall monitor watching it, when it ends
	// watch is the syscall monitor's state for the process (serve
	// --audit; only the daemon's audit loop touches it); violations
	// counts the calls outside its profile it has seen.
	watch      *auditedProc
	violations atomic.Uint64
	stdinSrc   *io.PipeReader // its console input, closed when it ends

	stopMu     sync.Mutex // stopMu protects stopReason
	stopReason string     // why Stop was called, "" if it was not

	// ops carries operations; stat the stats requests, with a short
	// deadline, so that a slow or hostile VM process holds up neither
	// its own operations nor the daemon's listings for long.
	ops, stat *ctlConn

	mu     sync.Mutex // mu protects the stats cache
	cached *ctlStats
	at     time.Time
}

// ctlConn is one connection to a VM process's control socket. The VM
// process is not trusted: a reply is bounded in size and in time, and a
// connection that breaks either is dropped (the next request dials
// again).
type ctlConn struct {
	sock, name string
	timeout    time.Duration

	mu   sync.Mutex // mu protects conn and rd, and orders requests
	conn net.Conn
	rd   *bufio.Reader
}

// maxCtlReply bounds one reply of a VM process.
const maxCtlReply = 1 << 20

func (c *ctlConn) ask(req ctlRequest) (*ctlReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		conn, err := net.DialTimeout("unix", c.sock, 5*time.Second)
		if err != nil {
			return nil, fmt.Errorf("VM process of %s: %v", c.name, err)
		}
		c.conn, c.rd = conn, bufio.NewReaderSize(conn, 64<<10)
	}
	fail := func(err error) (*ctlReply, error) {
		c.conn.Close()
		c.conn = nil
		return nil, fmt.Errorf("VM process of %s: %v", c.name, err)
	}
	req.VM = c.name
	b, _ := json.Marshal(&req)
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return fail(err)
	}
	var line []byte
	for {
		chunk, err := c.rd.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxCtlReply {
			return fail(fmt.Errorf("a reply over %d bytes", maxCtlReply))
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return fail(err)
		}
	}
	var rep ctlReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return fail(fmt.Errorf("bad reply: %v", err))
	}
	if rep.Error != "" {
		return &rep, errors.New(rep.Error)
	}
	return &rep, nil
}

func (c *ctlConn) close() {
	c.mu.Lock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	c.mu.Unlock()
}

// ask sends one operation (on its own connection: a snapshot may take a
// while) and returns the reply.
func (p *procVM) ask(req ctlRequest) (*ctlReply, error) { return p.ops.ask(req) }

func (p *procVM) do(req ctlRequest) error {
	_, err := p.ask(req)
	p.mu.Lock()
	p.cached = nil
	p.mu.Unlock()
	return err
}

// stats reads the VM's counters, at most every 50 ms; a VM process that
// does not answer (ending, or gone) reads as zero counters.
func (p *procVM) stats() *ctlStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cached != nil && time.Since(p.at) < 50*time.Millisecond {
		return p.cached
	}
	rep, err := p.stat.ask(ctlRequest{Op: "stats"})
	if err != nil || rep.Stats == nil {
		// A VM process that does not answer (ending, gone, or hostile)
		// is asked again in a second, not by every reader meanwhile.
		if p.cached == nil {
			p.cached = &ctlStats{Mode: p.mode}
		}
		p.at = time.Now().Add(time.Second)
		return p.cached
	}
	p.cached, p.at = rep.Stats, time.Now()
	return p.cached
}

func (p *procVM) Name() string   { return p.name }
func (p *procVM) Mode() cpu.Mode { return p.mode }

func (p *procVM) Run() hv.ExitStatus {
	<-p.done
	return p.exit
}

// Stop asks the VM to stop; a process that does not answer is sent
// SIGTERM, and SIGKILL ten seconds later.
func (p *procVM) Stop(code int, reason string) {
	select {
	case <-p.done:
		return
	default:
	}
	p.stopMu.Lock()
	if p.stopReason == "" {
		p.stopReason = reason
	}
	p.stopMu.Unlock()
	if err := p.do(ctlRequest{Op: "stop"}); err != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	go func() {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
		}
	}()
}

func (p *procVM) Pause() error  { return p.do(ctlRequest{Op: "pause"}) }
func (p *procVM) Resume() error { return p.do(ctlRequest{Op: "resume"}) }
func (p *procVM) Paused() bool  { return p.stats().Paused }
func (p *procVM) SetMemTarget(b uint64) error {
	return p.do(ctlRequest{Op: "mem-set", Bytes: b})
}
func (p *procVM) SetPatchLevel(l uint64) error {
	return p.do(ctlRequest{Op: "patch-level", Level: l})
}

// SetCPUWeight and SetCPUCap change the VM process's control group (the
// bound across processes) and its own scheduler's.
func (p *procVM) SetCPUWeight(w int) error {
	if err := p.cg.SetCPUWeight(w); err != nil {
		return err
	}
	return p.do(ctlRequest{Op: "sched-credit", Weight: &w})
}

func (p *procVM) SetCPUCap(pct int) error {
	if err := p.cg.SetCPUCap(pct); err != nil {
		return err
	}
	return p.do(ctlRequest{Op: "sched-credit", Cap: &pct})
}

func (p *procVM) EjectDevice(slot int, force bool) error {
	return p.do(ctlRequest{Op: "device-detach", Device: &slot, Force: force})
}

// CPUStats is the VM's scheduler accounting, with its CPU time replaced
// by its control group's: the host's account of the whole process.
func (p *procVM) CPUStats() sched.VMStats {
	s := p.stats().CPU
	if used, err := p.cg.CPUUsage(); err == nil {
		s.CPU = used
	}
	return s
}

func (p *procVM) MemStats() mm.VMStats { return p.stats().Mem }
func (p *procVM) StatsSnapshot() ([64]uint64, map[string]uint64, uint64, bool) {
	s := p.stats()
	return s.Hypercalls, s.Priv, s.Before, s.PVStarted
}
func (p *procVM) RefusedHypercalls() uint64 { return p.stats().Refused }
func (p *procVM) Lineage() hv.Lineage       { return p.stats().Lineage }
func (p *procVM) Inventory() []string       { return p.stats().Inventory }
func (p *procVM) LiveEngineStats(i int) cpu.Stats {
	if s := p.stats(); i < len(s.Engine) {
		return s.Engine[i]
	}
	return cpu.Stats{}
}
func (p *procVM) MMIODevices() []hv.MMIODevice { return p.stats().MMIO }
func (p *procVM) SlotDevices() []hv.SlotDevice { return p.stats().Slots }
func (p *procVM) StatsText(time.Time) string   { return p.stats().Text }

func (p *procVM) Snapshot(req *ctlRequest) (string, uint64, error) {
	r := *req
	r.Op = "snapshot"
	rep, err := p.ask(r)
	if err != nil {
		return "", 0, err
	}
	if rep.PatchLevel == nil {
		return "", 0, errors.New("the VM process did not describe its snapshot")
	}
	return rep.SnapshotID, *rep.PatchLevel, nil
}

func (p *procVM) Attach(req *ctlRequest) (int, error) {
	r := *req
	r.Op = "device-attach"
	rep, err := p.ask(r)
	if err != nil {
		return 0, err
	}
	if rep.Slot == nil {
		return 0, errors.New("the VM process did not say where it attached the device")
	}
	return *rep.Slot, nil
}

// procStderrMu keeps the VM processes' message lines whole.
var procStderrMu sync.Mutex

// startProcVM starts def's VM in a pvisor run process of its own: the
// same binary, the definition as run's flags, a control socket in
// sockDir, snapshots allowed in snapDir, held by control groups under
// group.
func startProcVM(def Definition, spec vmSpec, stateDir, sockDir, snapDir, group, seccompMode string, console *consoleHub) (*procVM, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if len(def.Nets) > 0 {
		return nil, errors.New("--isolate: this VM has a NIC, and the switch's segments do not span processes yet")
	}
	p := &procVM{name: def.Name, mode: spec.mode, done: make(chan struct{}),
		sock: filepath.Join(sockDir, "ctl.sock")}
	p.ops = &ctlConn{sock: p.sock, name: def.Name, timeout: 2 * time.Minute}
	p.stat = &ctlConn{sock: p.sock, name: def.Name, timeout: 2 * time.Second}
	os.Remove(p.sock)
	args := []string{"run", "--name", def.Name, "--kernel", def.Kernel, "--state-dir", stateDir,
		"--control", p.sock, "--mem", strconv.FormatUint(spec.memBytes, 10), "--vcpus", strconv.Itoa(spec.vcpus),
		"--mode", spec.mode.String(), "--cpu-weight", strconv.Itoa(weightOf(spec)), "--cpu-cap", strconv.Itoa(spec.cap),
		"--workers", "1", "--sandbox-allow", snapDir, "--seccomp", seccompMode}
	if def.Initrd != "" {
		args = append(args, "--initrd", def.Initrd)
	}
	if spec.cmdline != "" {
		args = append(args, "--cmdline", spec.cmdline)
	}
	for _, d := range def.Disks {
		args = append(args, "--disk", d)
	}
	if def.RNG {
		args = append(args, "--rng")
	}
	if p.cg, err = vmGroup(group+"/"+def.Name, spec); err != nil {
		return nil, err
	}
	p.cmd = exec.Command(exe, args...)
	// The guest's console is the VM's; the VM process's own messages
	// go to the daemon's, marked with the VM's name.
	// Input through a pipe of our own: os/exec's copy from a reader
	// would hold Wait until the next console input.
	p.cmd.Stdout = console.writer()
	in := console.reader().(*io.PipeReader)
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.stdinSrc = in
	p.cmd.Stderr = &prefixWriter{w: os.Stderr, mu: &procStderrMu, prefix: "pvisor serve: " + def.Name + ": "}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.cg.Remove()
		return nil, err
	}
	if err := p.cg.Add(p.cmd.Process.Pid); err != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cg.Remove()
		return nil, err
	}
	go func() {
		io.Copy(stdin, in)
		stdin.Close()
	}()
	go p.wait()
	// It is up once its control socket answers.
	for t0 := time.Now(); ; {
		if _, err := p.ask(ctlRequest{Op: "stats"}); err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("the VM process ended while starting: %s", p.exit.Reason)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(t0) > time.Minute {
			p.cmd.Process.Kill()
			<-p.done
			return nil, errors.New("the VM process did not answer on its control socket within a minute")
		}
	}
}

// wait reaps the process and says how the VM ended.
func (p *procVM) wait() {
	err := p.cmd.Wait()
	p.stdinSrc.Close()
	p.exit = hv.ExitStatus{Reason: "the VM's process exited"}
	var sig syscall.Signal
	p.exit.Code, sig = processEnd(err)
	if sig != 0 {
		p.exit.Reason = killedReason(p.cmd.Process.Pid, sig)
	} else if p.exit.Code != 0 && !errors.As(err, new(*exec.ExitError)) {
		p.exit.Reason = err.Error()
	}
	p.stopMu.Lock()
	if p.stopReason != "" && p.exit.Code == 0 {
		p.exit.Reason, p.exit.External = p.stopReason, true
	}
	p.stopMu.Unlock()
	p.ops.close()
	p.stat.close()
	p.cg.Remove()
	os.Remove(p.sock)
	if p.release != nil {
		p.release()
	}
	if p.unwatch != nil {
		p.unwatch()
	}
	close(p.done)
}

func (p *procVM) GenerationID() [16]byte { return p.stats().Generation }
