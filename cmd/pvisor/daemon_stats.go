package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
)

// vmSample is one reading of a VM's counters: what pvisor top shows (as
// rates between two samples) and the Prometheus endpoint exports. Every
// counter is cumulative over the VM's current run and read from the same
// sources as pvisor run --stats (and `pvisor stats`): the engine's
// counters as of the end of each vCPU's last slice, the hypervisor's,
// the scheduler's and the devices'.
type vmSample struct {
	Name  string    `json:"name"`
	State string    `json:"state"`
	Time  time.Time `json:"time"`
	// CPU and steal time, seconds.
	CPUSec   float64 `json:"cpu_s"`
	StealSec float64 `json:"steal_s"`
	// Instructions retired; Exits by reason; Hypercalls by name.
	Instructions uint64            `json:"instructions"`
	Exits        map[string]uint64 `json:"exits"`
	Hypercalls   map[string]uint64 `json:"hypercalls"`
	// Violations: privileged-instruction exits after PV start-up, and
	// hypercalls refused (-ENOSYS, -EPROTO, -EPERM).
	PrivilegedAfterStart uint64 `json:"privileged_after_start"`
	RefusedHypercalls    uint64 `json:"refused_hypercalls"`
	// SyscallViolations are the VM process's system calls outside the
	// VMM's profile that the daemon's monitor saw (serve --isolate
	// --audit).
	SyscallViolations uint64 `json:"syscall_violations"`
	// Memory, bytes.
	MemReserved uint64 `json:"mem_reserved"`
	MemResident uint64 `json:"mem_resident"`
	MemTarget   uint64 `json:"mem_target"`
	// BlockBytes and NetBytes are the buffer bytes the VM's disks and
	// NICs moved.
	BlockBytes uint64 `json:"block_bytes"`
	NetBytes   uint64 `json:"net_bytes"`
}

// sampleVM reads vm's counters.
func sampleVM(name, state string, vm vmBackend) vmSample {
	s := vmSample{Name: name, State: state, Time: time.Now().UTC(), Exits: map[string]uint64{}, Hypercalls: map[string]uint64{}}
	if vm == nil {
		return s
	}
	cs, ms := vm.CPUStats(), vm.MemStats()
	s.CPUSec = cs.CPU.Seconds()
	for i, v := range cs.VCPUs {
		s.StealSec += v.Steal.Seconds()
		es := vm.LiveEngineStats(i)
		s.Instructions += es.Instructions
		for r, n := range es.Exits {
			if n != 0 {
				s.Exits[cpu.ExitReason(r).String()] += n
			}
		}
	}
	hc, priv, _, _ := vm.StatsSnapshot()
	for nr, n := range hc {
		if n != 0 && nr < len(hypercall.Table) {
			s.Hypercalls[hypercall.Table[nr].Name] = n
		}
	}
	for _, n := range priv {
		s.PrivilegedAfterStart += n
	}
	s.RefusedHypercalls = vm.RefusedHypercalls()
	if p, ok := vm.(*procVM); ok {
		s.SyscallViolations = p.violations.Load()
	}
	s.MemReserved, s.MemResident, s.MemTarget = ms.Reserved, ms.Resident, ms.Target
	add := func(name string, bytes uint64, net bool) {
		if strings.HasPrefix(name, "virtio-blk") {
			s.BlockBytes += bytes
		} else if net {
			s.NetBytes += bytes
		}
	}
	for _, d := range vm.MMIODevices() {
		add(d.Name, d.Bytes, d.Net != nil)
	}
	for _, d := range vm.SlotDevices() {
		add(d.Name, d.Bytes, d.Net != nil)
	}
	return s
}

// samples reads every VM of the daemon, sorted by name.
func (d *daemon) samples() []vmSample {
	ents := d.entries()
	out := make([]vmSample, 0, len(ents))
	for _, e := range ents {
		e.mu.Lock()
		vm, name := e.vm, e.rec.Definition.Name
		e.mu.Unlock()
		state := stateStopped
		if vm != nil {
			state = stateRunning
			if vm.Paused() {
				state = statePaused
			}
		}
		out = append(out, sampleVM(name, state, vm))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// metricsCollector exports the daemon's samples to Prometheus, labelled
// by VM: it reads them at each scrape, so a scrape is as fresh as a
// `pvisor top --once`.
type metricsCollector struct{ d *daemon }

var (
	mDesc = func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("pvisor_"+name, help, append([]string{"vm"}, labels...), nil)
	}
	mUp           = mDesc("vm_running", "1 if the VM is running (or paused), 0 if stopped")
	mPaused       = mDesc("vm_paused", "1 if the VM is paused")
	mCPU          = mDesc("vm_cpu_seconds_total", "host CPU time of the VM's vCPUs and devices")
	mSteal        = mDesc("vm_steal_seconds_total", "time the VM's vCPUs were runnable but not running")
	mInstructions = mDesc("vm_instructions_total", "guest instructions retired")
	mExits        = mDesc("vm_exits_total", "VM exits by reason", "reason")
	mHypercalls   = mDesc("vm_hypercalls_total", "hypercalls by name", "call")
	mPriv         = mDesc("vm_privileged_after_start_total", "privileged-instruction exits after PV start-up (violations)")
	mRefused      = mDesc("vm_refused_hypercalls_total", "hypercalls refused with -ENOSYS, -EPROTO or -EPERM (violations)")
	mMemReserved  = mDesc("vm_memory_reserved_bytes", "guest memory reserved")
	mMemResident  = mDesc("vm_memory_resident_bytes", "guest memory resident")
	mMemTarget    = mDesc("vm_memory_target_bytes", "balloon target")
	mBlock        = mDesc("vm_block_bytes_total", "bytes moved by the VM's disks")
	mNet          = mDesc("vm_net_bytes_total", "bytes moved by the VM's NICs")
)

func (c metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mUp, mPaused, mCPU, mSteal, mInstructions, mExits, mHypercalls, mPriv, mRefused, mMemReserved, mMemResident, mMemTarget, mBlock, mNet} {
		ch <- d
	}
}

func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.d.samples() {
		b := func(v bool) float64 {
			if v {
				return 1
			}
			return 0
		}
		g := func(d *prometheus.Desc, t prometheus.ValueType, v float64, l ...string) {
			ch <- prometheus.MustNewConstMetric(d, t, v, append([]string{s.Name}, l...)...)
		}
		g(mUp, prometheus.GaugeValue, b(s.State != stateStopped))
		g(mPaused, prometheus.GaugeValue, b(s.State == statePaused))
		if s.State == stateStopped {
			continue
		}
		g(mCPU, prometheus.CounterValue, s.CPUSec)
		g(mSteal, prometheus.CounterValue, s.StealSec)
		g(mInstructions, prometheus.CounterValue, float64(s.Instructions))
		for r, n := range s.Exits {
			g(mExits, prometheus.CounterValue, float64(n), r)
		}
		for name, n := range s.Hypercalls {
			g(mHypercalls, prometheus.CounterValue, float64(n), name)
		}
		g(mPriv, prometheus.CounterValue, float64(s.PrivilegedAfterStart))
		g(mRefused, prometheus.CounterValue, float64(s.RefusedHypercalls))
		g(mMemReserved, prometheus.GaugeValue, float64(s.MemReserved))
		g(mMemResident, prometheus.GaugeValue, float64(s.MemResident))
		g(mMemTarget, prometheus.GaugeValue, float64(s.MemTarget))
		g(mBlock, prometheus.CounterValue, float64(s.BlockBytes))
		g(mNet, prometheus.CounterValue, float64(s.NetBytes))
	}
}

// metricsHandler is the Prometheus endpoint: the VMs' counters and the
// Go runtime's and process's of the daemon.
func (d *daemon) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metricsCollector{d}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// statsText is `pvisor stats VM`: pvisor run --stats's report of the
// running VM.
func statsText(vm *hv.VM, since time.Time) string {
	var b strings.Builder
	printStats(&b, vm, time.Since(since))
	return b.String()
}

var _ = fmt.Sprint
