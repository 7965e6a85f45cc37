// Package sandbox confines a VMM process once its VMs are set up, in the
// way Firecracker's jailer confines its VMM: whatever a guest makes of a
// bug in device emulation afterwards runs with only what the process was
// left with.
//
// Apply, called once after the kernels are loaded, the disks and TAPs
// opened and the control socket bound, does in this order, on every OS
// thread of the process:
//
//  1. no_new_privs, so that nothing the process executes gains privilege
//     (and so that an unprivileged process may install the filters);
//  2. a Landlock domain (github.com/landlock-lsm/go-landlock): the
//     filesystem is limited to the VM's own files (Config.ReadOnly,
//     Config.ReadWrite) and TCP bind and connect are refused, where the
//     kernel's Landlock ABI has those rights;
//  3. every capability dropped: the bounding set (where the process may
//     drop it), the ambient set, then the effective, permitted and
//     inheritable sets;
//  4. a seccomp-BPF allow-list (github.com/elastic/go-seccomp-bpf) of the
//     system calls in Profile, installed with SECCOMP_FILTER_FLAG_TSYNC.
//     Any other call kills the process (ModeKill) or is logged by the
//     kernel and allowed (ModeLog, for finding what a new code path
//     needs).
//
// Threads the Go runtime creates later inherit all four from the thread
// that creates them.
//
// Landlock and capability changes act on one thread at a time in Linux;
// they reach every thread through kernel.org/.../libcap/psx, which in a
// build without cgo (CGO_ENABLED=0, as the Makefile builds) is
// syscall.AllThreadsSyscall. A cgo build cannot do that safely, and
// Apply refuses it rather than confine some threads only.
//
// Trust boundary: the profile is the VMM's promise of what it calls. It
// is data (Profile) with the reason for each call, documented in
// docs/security.md and checked against it by this package's tests.
package sandbox
