//go:build !linux

package sched

import "errors"

var errNoAffinity = errors.New("sched: binding workers to host CPUs (Config.CPUs) needs Linux")

// bindThread fails: thread affinity is implemented for Linux only.
func bindThread(w, cpu int) (int, error) { return 0, errNoAffinity }

// checkHostCPUs fails: thread affinity is implemented for Linux only.
func checkHostCPUs([]int) error { return errNoAffinity }

// mainThread reports false: only Linux binds worker threads.
func mainThread() bool { return false }

// AllowedCPUs fails: thread affinity is implemented for Linux only.
func AllowedCPUs() ([]int, error) { return nil, errNoAffinity }
