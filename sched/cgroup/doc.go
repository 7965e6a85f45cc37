// Package cgroup holds VMM processes (pvisor run --isolate runs one per
// VM) to the CPU weight, CPU cap, memory and task bounds the scheduler
// and mm hold VMs to inside one process, through the host's control
// groups: cgroup v1's cpu, cpuacct, memory and pids hierarchies where
// they are mounted, else the v2 unified hierarchy's cpu, memory and pids
// controllers.
//
// A Group is made under the calling process's own cgroup in each
// hierarchy (so a delegated subtree is respected), one directory per VM.
// The mapping from pvisor's bounds:
//
//	| bound                  | v1                               | v2                    |
//	|------------------------|----------------------------------|-----------------------|
//	| CPU weight w (256 = 1) | cpu.shares = 4w                  | cpu.weight = 100w/256 |
//	| CPU cap p % of one CPU | cpu.cfs_quota_us = 1000p / 100ms | cpu.max = "1000p 100000" |
//	| memory reservation     | memory.limit_in_bytes            | memory.max            |
//	| tasks                  | pids.max                         | pids.max              |
//
// Trust boundary: the values come from the operator's VM specs, already
// checked by pvisor run; the directories are the host's. Nothing here is
// read from a guest.
package cgroup
