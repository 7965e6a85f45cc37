package sandbox

import (
	"fmt"
	"strings"
)

// Mode is what the seccomp filter does with a call outside the profile.
type Mode int

const (
	// ModeKill kills the whole process (SECCOMP_RET_KILL_PROCESS), as
	// Firecracker's filters do: a VMM that calls outside its profile is
	// taken to be compromised.
	ModeKill Mode = iota
	// ModeLog allows the call and has the kernel log it
	// (SECCOMP_RET_LOG): for finding what a new code path needs.
	ModeLog
)

// ParseMode reads --seccomp's value.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "kill":
		return ModeKill, nil
	case "log":
		return ModeLog, nil
	}
	return 0, fmt.Errorf("--seccomp %q: want kill or log (--sandbox=false turns the whole sandbox off)", s)
}

func (m Mode) String() string {
	if m == ModeLog {
		return "log"
	}
	return "kill"
}

// Config is what a VMM keeps once confined.
type Config struct {
	// ReadOnly and ReadWrite are files or directories (a directory's
	// rule covers what is under it) the process may still open. Paths
	// that do not exist are refused: the caller names what it uses.
	ReadOnly  []string
	ReadWrite []string
	// Seccomp is what a call outside Profile does.
	Seccomp Mode
	// NoLandlock leaves the filesystem unconfined (the other steps
	// still apply).
	NoLandlock bool
}

// Status is what Apply achieved, for --stats and the VM's event log.
type Status struct {
	// LandlockABI is the kernel's Landlock ABI version the domain was
	// built for (0: none, the kernel has no Landlock or NoLandlock).
	LandlockABI int
	// Syscalls is the number of calls the filter allows.
	Syscalls int
	Seccomp  Mode
	// BoundingDropped says whether the capability bounding set could be
	// emptied too (it needs CAP_SETPCAP, which an unprivileged process
	// does not have and cannot regain under no_new_privs anyway).
	BoundingDropped bool
}

func (s Status) String() string {
	ll := "no Landlock"
	if s.LandlockABI > 0 {
		ll = fmt.Sprintf("Landlock ABI %d", s.LandlockABI)
	}
	caps := "no capabilities"
	if !s.BoundingDropped {
		caps += " (bounding set kept: no CAP_SETPCAP)"
	}
	return fmt.Sprintf("sandbox: no_new_privs, %s, %s, seccomp %s (%d calls)", ll, caps, s.Seccomp, s.Syscalls)
}

// Names lists the profile's call names, in order.
func Names() []string {
	n := make([]string, len(Profile))
	for i, c := range Profile {
		n[i] = c.Name
	}
	return n
}

func pathList(p []string) string { return strings.Join(p, ", ") }
