//go:build linux && !cgo

package sandbox

import (
	"errors"
	"fmt"
	"os"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

// Apply confines the calling process: see the package comment for the
// steps. It is called once, after set-up; an error leaves the process
// partly confined and the caller must not run guests (it exits).
func Apply(c Config) (Status, error) {
	st := Status{Seccomp: c.Seccomp}
	for _, p := range append(append([]string(nil), c.ReadOnly...), c.ReadWrite...) {
		if _, err := os.Stat(p); err != nil {
			return st, fmt.Errorf("sandbox: allowed path: %w", err)
		}
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return st, fmt.Errorf("sandbox: no_new_privs: %w", err)
	}
	if !c.NoLandlock {
		abi, err := restrictFS(c)
		if err != nil {
			return st, err
		}
		st.LandlockABI = abi
	}
	var err error
	if st.BoundingDropped, err = dropCaps(); err != nil {
		return st, err
	}
	n, err := loadFilter(c.Seccomp)
	if err != nil {
		return st, err
	}
	st.Syscalls = n
	return st, nil
}

// restrictFS installs the Landlock domain: the newest ABI go-landlock
// knows, downgraded to what the kernel has (BestEffort). Restrict, not
// RestrictPaths, so that TCP bind and connect (ABI 4) and abstract
// sockets and signals outside the domain (ABI 6) are refused too.
func restrictFS(c Config) (int, error) {
	abi, err := llsys.LandlockGetABIVersion()
	if err != nil || abi < 1 {
		return 0, nil // no Landlock in this kernel: the other steps still hold
	}
	rules := append(pathRules(c.ReadOnly, false), pathRules(c.ReadWrite, true)...)
	if err := landlock.V7.BestEffort().Restrict(rules...); err != nil {
		return 0, fmt.Errorf("sandbox: Landlock (read-only %s; read-write %s): %w", pathList(c.ReadOnly), pathList(c.ReadWrite), err)
	}
	return abi, nil
}

// pathRules grants paths read-only or read-write access. Landlock
// grants directory rights (make, remove, read a directory) only on
// directories, so files and directories get separate rules.
func pathRules(paths []string, write bool) []landlock.Rule {
	fileRule, dirRule := landlock.ROFiles, landlock.RODirs
	if write {
		fileRule, dirRule = landlock.RWFiles, landlock.RWDirs
	}
	files, dirs := split(paths)
	var r []landlock.Rule
	if len(files) > 0 {
		r = append(r, fileRule(files...))
	}
	if len(dirs) > 0 {
		d := dirRule(dirs...)
		if write {
			// Snapshots and lineage records are written to a temporary
			// name, then linked or renamed within the directory:
			// that needs "refer".
			d = d.WithRefer()
		}
		r = append(r, d)
	}
	return r
}

func split(paths []string) (files, dirs []string) {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
	}
	return files, dirs
}

// dropCaps empties the bounding set (if the process holds CAP_SETPCAP),
// the ambient set, and the effective, permitted and inheritable sets,
// on every thread. It reports whether the bounding set was emptied.
func dropCaps() (bool, error) {
	bounding := true
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		err := allThreads(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0)
		if errors.Is(err, unix.EINVAL) {
			break // past the kernel's last capability
		}
		if errors.Is(err, unix.EPERM) {
			bounding = false // no CAP_SETPCAP: nothing to regain under no_new_privs
			break
		}
		if err != nil {
			return false, fmt.Errorf("sandbox: dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return false, fmt.Errorf("sandbox: clearing ambient capabilities: %w", err)
	}
	capHdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	capData = [2]unix.CapUserData{} // no capability in any set
	if err := allThreads(unix.SYS_CAPSET, uintptrOf(&capHdr), uintptrOf(&capData[0]), 0); err != nil {
		return false, fmt.Errorf("sandbox: capset: %w", err)
	}
	return bounding, nil
}

// capset's arguments are package variables, which never move: psx hands
// them as integers to every thread, while a goroutine's stack may move.
var (
	capHdr  unix.CapUserHeader
	capData [2]unix.CapUserData
)

// allThreads makes a system call on every OS thread of the process.
func allThreads(nr, a1, a2, a3 uintptr) error {
	if _, _, e := psx.Syscall3(nr, a1, a2, a3); e != 0 {
		return e
	}
	return nil
}

// loadFilter installs the seccomp filter for Profile on every thread.
func loadFilter(m Mode) (int, error) {
	p, n, err := policy(m)
	if err != nil {
		return 0, err
	}
	f := seccomp.Filter{NoNewPrivs: true, Flag: seccomp.FilterFlagTSync, Policy: p}
	if err := seccomp.LoadFilter(f); err != nil {
		return 0, fmt.Errorf("sandbox: seccomp: %w", err)
	}
	return n, nil
}
