package main

import (
	"strings"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// ctlStats is a VM's counters over the control socket (the stats op):
// what the daemon reads of a VM that runs in a process of its own
// (pvisor serve --isolate) where it would read *hv.VM in its own.
type ctlStats struct {
	Mode       cpu.Mode          `json:"mode"`
	Paused     bool              `json:"paused"`
	CPU        sched.VMStats     `json:"cpu"`
	Mem        mm.VMStats        `json:"mem"`
	Hypercalls [64]uint64        `json:"hypercalls"`
	Priv       map[string]uint64 `json:"priv,omitempty"`
	Before     uint64            `json:"before"`
	PVStarted  bool              `json:"pv_started"`
	Refused    uint64            `json:"refused"`
	Lineage    hv.Lineage        `json:"lineage"`
	Inventory  []string          `json:"inventory,omitempty"`
	Engine     []cpu.Stats       `json:"engine,omitempty"`
	MMIO       []hv.MMIODevice   `json:"mmio,omitempty"`
	Slots      []hv.SlotDevice   `json:"slots,omitempty"`
	Generation [16]byte          `json:"generation"`
	// Text is pvisor run --stats's report (pvisor stats VM).
	Text string `json:"text"`
}

// statsStart is when this process started, for the report's wall time.
var statsStart = time.Now()

func vmStats(vm *hv.VM) *ctlStats {
	st := &ctlStats{Mode: vm.Mode(), Paused: vm.Paused(), CPU: vm.CPUStats(), Mem: vm.MemStats(),
		Refused: vm.RefusedHypercalls(), Lineage: vm.Lineage(), Inventory: vm.Inventory(),
		MMIO: vm.MMIODevices(), Slots: vm.SlotDevices(), Generation: vm.GenerationID()}
	// An error does not cross JSON; the inventory's lines carry it.
	for i := range st.MMIO {
		st.MMIO[i].Err = nil
	}
	for i := range st.Slots {
		st.Slots[i].Err = nil
	}
	st.Hypercalls, st.Priv, st.Before, st.PVStarted = vm.StatsSnapshot()
	for i := range st.CPU.VCPUs {
		st.Engine = append(st.Engine, vm.LiveEngineStats(i))
	}
	var b strings.Builder
	printStats(&b, vm, time.Since(statsStart))
	st.Text = b.String()
	return st
}
