package sandbox

import "golang.org/x/sys/unix"

// Call is one system call of the profile: its name (as in the x86-64
// table), why the VMM needs it, and, for calls allowed only with some
// arguments, the conditions (one of which must hold).
type Call struct {
	Name string
	Why  string
	// FlagsSet, when non-zero, allows the call only when all these bits
	// of argument Arg are set.
	Arg      uint32
	FlagsSet uint64
	// Ioctls, when set, allows the call (ioctl) only with these request
	// numbers (argument 1).
	Ioctls []uint64
	// ArgZero allows the call only when argument Arg is 0 (a pid of 0:
	// the calling thread, no other task).
	ArgZero bool
}

// Profile is the allow-list of a running VMM (pvisor run, and each VM
// process of pvisor serve --isolate): the Go runtime, the engine and
// scheduler, virtio device backends over already-open files and TAPs,
// the control socket, snapshots and hot-plugged disks under the allowed
// directories, and the lineage store. Anything else (execve, socket,
// connect, ptrace, mount, bpf, ...) is outside it.
var Profile = []Call{
	// Memory: the Go heap and stacks, guest RAM (anonymous mappings),
	// the balloon's returned pages.
	{Name: "mmap", Why: "Go heap and stacks; guest RAM; snapshot files mapped for restore"},
	{Name: "munmap", Why: "Go heap; guest RAM released on stop"},
	{Name: "madvise", Why: "Go heap scavenger; balloon and mem-set return guest pages (MADV_DONTNEED)"},
	{Name: "mprotect", Why: "Go runtime (stack guard pages on some paths); the translator (--accel jit) seals code pages read-execute and unseals them read-write, never both"},
	{Name: "mincore", Why: "Go runtime probes of mapped memory"},

	// Threads, signals and time: the Go runtime.
	{Name: "clone", Why: "Go runtime threads, only with CLONE_THREAD (no new processes)", Arg: 0, FlagsSet: unix.CLONE_THREAD},
	{Name: "futex", Why: "Go runtime locks and thread parking"},
	{Name: "rt_sigaction", Why: "Go runtime signal handlers"},
	{Name: "rt_sigprocmask", Why: "Go runtime signal masks on new threads"},
	{Name: "rt_sigreturn", Why: "return from every signal handler (Go's async preemption)"},
	{Name: "sigaltstack", Why: "Go runtime signal stacks on new threads"},
	{Name: "tgkill", Why: "Go async preemption signals its own threads"},
	{Name: "getpid", Why: "Go runtime (signals to self)"},
	{Name: "gettid", Why: "Go runtime (signals to a thread)"},
	{Name: "sched_yield", Why: "Go runtime spinning; the scheduler's idle workers"},
	{Name: "sched_getaffinity", Why: "Go runtime (the number of usable CPUs); the scheduler's bound workers read their binding back"},
	{Name: "sched_setaffinity", Why: "the scheduler's workers bound to host CPUs (sched.Config.CPUs), each its own thread, at the pool's Start; only with pid 0 (the calling thread)", Arg: 0, ArgZero: true},
	{Name: "nanosleep", Why: "Go runtime usleep"},
	{Name: "clock_gettime", Why: "time when the vDSO is not mapped; guest clocks"},
	{Name: "clock_nanosleep", Why: "Go timers on some paths"},
	{Name: "restart_syscall", Why: "a call interrupted by a signal restarted by the kernel"},
	{Name: "exit", Why: "an OS thread ends"},
	{Name: "exit_group", Why: "the VMM exits when its VMs stop"},
	{Name: "geteuid", Why: "the lineage store checks its directory's owner"},
	{Name: "getuid", Why: "the lineage store checks its directory's owner"},
	{Name: "getrandom", Why: "crypto/rand (snapshot nonces, keys); Go map seeds"},

	// The network poller, for the console, TAPs and the control socket.
	{Name: "epoll_pwait", Why: "Go network poller"},
	{Name: "epoll_ctl", Why: "Go network poller: files added and removed"},
	{Name: "epoll_create1", Why: "Go network poller, created on first use"},
	{Name: "eventfd2", Why: "Go network poller wake-ups"},
	{Name: "pipe2", Why: "Go runtime and os (internal wake-ups)"},

	// Files already open (disks, overlays, TAPs, console) and those the
	// VMM opens under its allowed directories (snapshots, hot-plugged
	// disks, the lineage store).
	{Name: "read", Why: "console input, TAP frames, control requests, files"},
	{Name: "write", Why: "console output, TAP frames, control replies, files"},
	{Name: "readv", Why: "os.File reads of several buffers"},
	{Name: "writev", Why: "os.File writes of several buffers"},
	{Name: "pread64", Why: "disk reads (virtio-blk, overlays)"},
	{Name: "pwrite64", Why: "disk writes (virtio-blk, overlays)"},
	{Name: "lseek", Why: "files read whole (snapshot sections, lineage records)"},
	{Name: "close", Why: "files and connections closed"},
	{Name: "fcntl", Why: "os.File non-blocking mode and close-on-exec"},
	{Name: "fstat", Why: "os.File.Stat of open files"},
	{Name: "newfstatat", Why: "os.Stat of snapshot and disk paths (Landlock limits which)"},
	{Name: "statx", Why: "os.Stat on some kernels"},
	{Name: "openat", Why: "snapshots, hot-plugged disks, the lineage store (Landlock limits the paths)"},
	{Name: "mkdirat", Why: "the lineage store's directories"},
	{Name: "renameat", Why: "snapshot and lineage files written to a temporary name, then renamed"},
	{Name: "renameat2", Why: "os.Rename on some Go versions"},
	{Name: "unlinkat", Why: "a temporary snapshot file removed after a failure"},
	{Name: "linkat", Why: "a finished snapshot linked to its name, refusing a path created meanwhile"},
	{Name: "getdents64", Why: "directories read (lineage store)"},
	{Name: "fsync", Why: "snapshots and lineage records made durable"},
	{Name: "fdatasync", Why: "virtio-blk flush and write-through"},
	{Name: "ftruncate", Why: "overlays and snapshot files sized"},
	{Name: "fallocate", Why: "overlay files grown"},
	{Name: "flock", Why: "the lineage store's lock"},
	{Name: "fchmod", Why: "files created with the snapshot's mode"},
	{Name: "readlinkat", Why: "os.Executable and path resolution"},
	{Name: "copy_file_range", Why: "io.Copy between files (an overlay copied into a snapshot)"},
	{Name: "sendfile", Why: "io.Copy between files on older kernels"},
	{Name: "ioctl", Why: "the console terminal restored on exit (TCGETS, TCSETS*) and its size",
		Ioctls: []uint64{unix.TCGETS, unix.TCSETS, unix.TCSETSW, unix.TCSETSF, unix.TIOCGWINSZ}},

	// The control socket, bound before the sandbox.
	{Name: "accept4", Why: "control connections (pvisor ctl)"},
	{Name: "getsockname", Why: "net.Conn addresses of accepted connections"},
	{Name: "getpeername", Why: "net.Conn addresses of accepted connections"},
	{Name: "setsockopt", Why: "options of accepted connections"},
	{Name: "getsockopt", Why: "pending errors on sockets"},
	{Name: "shutdown", Why: "a control connection closed"},
	{Name: "recvfrom", Why: "reads on sockets"},
	{Name: "sendto", Why: "writes on sockets"},
	{Name: "recvmsg", Why: "reads on sockets"},
	{Name: "sendmsg", Why: "writes on sockets"},
}

// ENOSYS answers, rather than the kill, for calls with a fallback the
// profile allows: clone3's flags are in memory a seccomp filter cannot
// read, so it is refused and callers use clone.
var enosys = []string{"clone3"}
