package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pvisor/pvisor/hv/sandbox"
)

// sandboxFlags are pvisor run's --sandbox, --seccomp and --sandbox-allow.
type sandboxFlags struct {
	on    *bool
	mode  *string
	allow specList
}

func addSandboxFlags(fs *flag.FlagSet) *sandboxFlags {
	f := &sandboxFlags{
		on:   fs.Bool("sandbox", true, "confine the VMM once its VMs are set up: no_new_privs, no capabilities, Landlock (only the VMs' files, their lineage records, the control socket's directory and --sandbox-allow), a seccomp allow-list (docs/security.md)"),
		mode: fs.String("seccomp", "kill", "what a system call outside the VMM's profile does: kill (the process) or log (allowed, logged by the kernel)"),
	}
	fs.Var(&f.allow, "sandbox-allow", "a directory or file the sandboxed VMM may still read and write (snapshots, disks to hot-plug); repeatable")
	return f
}

// sandboxPlan is what a VMM process keeps once confined.
type sandboxPlan struct {
	on   bool
	mode sandbox.Mode
	// allow are the operator's --sandbox-allow paths.
	allow []string
}

func (f *sandboxFlags) plan() (sandboxPlan, error) {
	p := sandboxPlan{on: *f.on, allow: f.allow}
	var err error
	if p.mode, err = sandbox.ParseMode(*f.mode); err != nil {
		return p, err
	}
	for _, a := range p.allow {
		if _, err := os.Stat(a); err != nil {
			return p, fmt.Errorf("--sandbox-allow: %v", err)
		}
	}
	return p, nil
}

// activeSandbox says whether this process is confined, for the errors of
// requests that open paths at run time.
var activeSandbox bool

// confine applies the plan to a VMM whose VMs are set up: the paths its
// VMs may still open are their disks (read-only ones read-only), the
// lineage directories of its VMs in the state directory, the control
// socket's directory and the operator's --sandbox-allow paths.
func confine(p sandboxPlan, stateDir, control string, vms []vmSpec, lins []*vmLineage) (sandbox.Status, error) {
	c := sandbox.Config{Seccomp: p.mode}
	// Of the state directory, its own VMs' lineage directories only
	// (their records and event logs): not the other VMs' lineages, whose
	// highest patch levels are the rollback guard, nor the keys (the
	// attestation key) nor the daemon's records.
	for _, l := range lins {
		if l == nil || l.l == nil {
			continue
		}
		c.ReadWrite = append(c.ReadWrite, filepath.Join(stateDir, "lineages", l.l.ID().String()))
	}
	if control != "" {
		c.ReadWrite = append(c.ReadWrite, filepath.Dir(control))
	}
	c.ReadWrite = append(c.ReadWrite, p.allow...)
	for _, vm := range vms {
		for _, d := range vm.disks {
			switch {
			case d.Overlay != "":
				c.ReadOnly = append(c.ReadOnly, d.Path)
				c.ReadWrite = append(c.ReadWrite, d.Overlay)
			case d.ReadOnly:
				c.ReadOnly = append(c.ReadOnly, d.Path)
			default:
				c.ReadWrite = append(c.ReadWrite, d.Path)
			}
		}
	}
	st, err := sandbox.Apply(c)
	if err == nil {
		activeSandbox = true
	}
	return st, err
}

// sandboxHint adds to an error of a path opened at run time, refused by
// the sandbox, what to do about it.
func sandboxHint(err error) error {
	if err != nil && activeSandbox && errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (the VMM is sandboxed: it may open only its VMs' files and lineage records, the control socket's directory and --sandbox-allow paths)", err)
	}
	return err
}
