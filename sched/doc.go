// Package sched runs vCPUs on host goroutines. This first cut gives each
// vCPU its own goroutine and runs it in slices of a fixed instruction
// budget; the credit scheduler with per-VM weight and cap (issue 7)
// replaces the policy behind the same interface.
//
// Invariants: a Runnable is run by at most one goroutine at a time; Stop
// returns only when no slice of the group is running.
//
// sched depends on no engine: it sees vCPUs only as Runnable.
package sched
