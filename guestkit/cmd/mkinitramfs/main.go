// Command mkinitramfs writes the initramfs of pvisor's Linux guests: a
// gzip-compressed newc cpio archive holding a static busybox, a symlink per
// busybox applet, /dev/console and /dev/null, the usual top-level directories
// and /init.
//
//	go run ./guestkit/cmd/mkinitramfs [-o build/guest/initramfs.cpio.gz] [-busybox /bin/busybox]
//
// With -dir DIR it writes the same tree into the directory DIR instead (no
// device nodes: a kernel booted from a disk mounts devtmpfs on /dev before
// init runs, CONFIG_DEVTMPFS_MOUNT), for `make disk` to turn into an ext4
// root filesystem with mke2fs -d.
//
// The busybox binary must be statically linked (Debian: busybox-static); its
// applet list comes from running `busybox --list-full` on the host.
//
// # The /init protocol
//
// /init mounts proc, sysfs, devtmpfs and devpts. If the kernel command line
// contains pvisor.cmd=B64, B64 being the base64 encoding of a shell command,
// /init runs `sh -c CMD` with the console as standard input and output, then
// prints the line
//
//	pvisor-exit: STATUS
//
// where STATUS is the command's exit status (2 when B64 does not decode), and
// stops the machine with `reboot -f`. The kernel has no ACPI, so a power-off
// would only halt the CPU: the reboot resets the machine through the keyboard
// controller (port 0x64, value 0xFE), or triple-faults when the kernel was
// booted with reboot=t; QEMU with -no-reboot exits there. A host reads the
// status from the console line. Without pvisor.cmd, /init starts an
// interactive shell on the console and, when it exits, prints the same line
// and stops the machine the same way. Boot with panic=-1 so that a kernel
// panic resets the machine too.
package main

import (
	"bytes"
	"debug/elf"
	_ "embed"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pvisor/pvisor/guestkit/initramfs"
)

//go:embed init.sh
var initScript []byte

const (
	passwd = "root:x:0:0:root:/root:/bin/sh\n"
	group  = "root:x:0:\n"
)

func main() {
	out := flag.String("o", "build/guest/initramfs.cpio.gz", "output file")
	busybox := flag.String("busybox", "/bin/busybox", "statically linked busybox to install as /bin/busybox")
	initPath := flag.String("init", "", "use this file as /init instead of the built-in script")
	dir := flag.String("dir", "", "write the tree into this directory (which must not exist) instead of an archive")
	var extra addList
	flag.Var(&extra, "add", "add a host file as SRC:DST (e.g. build/guest/pvbench:bin/pvbench); repeatable")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkinitramfs [flags]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if *dir != "" {
		err = runDir(*dir, *busybox, *initPath, extra)
	} else {
		err = run(*out, *busybox, *initPath, extra)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
		os.Exit(1)
	}
}

// addList collects -add SRC:DST flags.
type addList [][2]string

func (l *addList) String() string { return fmt.Sprint(*l) }
func (l *addList) Set(v string) error {
	src, dst, ok := strings.Cut(v, ":")
	dst = strings.TrimLeft(dst, "/")
	if !ok || src == "" || dst == "" {
		return fmt.Errorf("-add %q: want SRC:DST", v)
	}
	*l = append(*l, [2]string{src, dst})
	return nil
}

// tree receives the guest's file tree: the cpio writer, or a directory.
type tree interface {
	AddDir(name string, mode fs.FileMode) error
	AddFile(name string, mode fs.FileMode, data []byte) error
	AddSymlink(name, target string) error
	AddCharDev(name string, mode fs.FileMode, major, minor uint32) error
	Close() error
}

// guestTree is what goes into the tree: busybox and its applets, init and
// the extra files.
type guestTree struct {
	busybox []byte
	applets []string
	init    []byte
	extra   addList
}

func loadTree(busybox, initPath string, extra addList) (*guestTree, error) {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("%v (install busybox-static: scripts/install-deps.sh guest)", err)
	}
	if err := checkStatic(busybox); err != nil {
		return nil, err
	}
	applets, err := appletPaths(busybox)
	if err != nil {
		return nil, err
	}
	init := initScript
	if initPath != "" {
		if init, err = os.ReadFile(initPath); err != nil {
			return nil, err
		}
	}
	return &guestTree{busybox: bb, applets: applets, init: init, extra: extra}, nil
}

func run(out, busybox, initPath string, extra addList) error {
	g, err := loadTree(busybox, initPath, extra)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := g.write(initramfs.NewWriter(&buf)); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Printf("mkinitramfs: wrote %s (%d KiB): busybox %d KiB, %d applet links\n",
		out, (buf.Len()+1023)/1024, len(g.busybox)/1024, len(g.applets))
	return nil
}

// runDir writes the tree into the new directory dir.
func runDir(dir, busybox, initPath string, extra addList) error {
	g, err := loadTree(busybox, initPath, extra)
	if err != nil {
		return err
	}
	d, err := newDirTree(dir)
	if err != nil {
		return err
	}
	if err := g.write(d); err != nil {
		return err
	}
	fmt.Printf("mkinitramfs: wrote the tree into %s: busybox %d KiB, %d applet links\n",
		dir, len(g.busybox)/1024, len(g.applets))
	return nil
}

func (g *guestTree) write(w tree) error {
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "mnt", "run", "var"} {
		w.AddDir(d, 0o755)
	}
	w.AddDir("root", 0o700)
	w.AddDir("tmp", 0o777|fs.ModeSticky)
	// The kernel opens /dev/console for init before devtmpfs is mounted.
	w.AddCharDev("dev/console", 0o600, 5, 1)
	w.AddCharDev("dev/null", 0o666, 1, 3)
	w.AddFile("etc/passwd", 0o644, []byte(passwd))
	w.AddFile("etc/group", 0o644, []byte(group))
	w.AddFile("bin/busybox", 0o755, g.busybox)
	for _, a := range g.applets {
		w.AddSymlink(a, "/bin/busybox")
	}
	w.AddFile("init", 0o755, g.init)
	for _, a := range g.extra {
		b, err := os.ReadFile(a[0])
		if err != nil {
			return err
		}
		w.AddFile(a[1], 0o755, b)
	}
	return w.Close()
}

// checkStatic refuses a dynamically linked busybox, which would not run in
// an initramfs without its libraries.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s is not an x86-64 binary", path)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: install busybox-static", path)
		}
	}
	return nil
}

// appletPaths returns where each applet lives (bin/sh, usr/bin/awk, ...),
// sorted, without busybox itself.
func appletPaths(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %v", busybox, err)
	}
	seen := map[string]bool{"bin/busybox": true}
	var paths []string
	for _, l := range strings.Fields(string(out)) {
		l = strings.TrimLeft(l, "/")
		if seen[l] {
			continue
		}
		seen[l] = true
		paths = append(paths, l)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s --list-full listed no applets", busybox)
	}
	sort.Strings(paths)
	return paths, nil
}
