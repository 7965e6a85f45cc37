package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/mm"
)

// `pvisor bench io`: the same disk workload (guestkit/pvbench's blk-*
// benchmarks, O_DIRECT on /dev/vda) over each mode's virtio transport —
// the hypercall transport of the patched kernel in pv mode, virtio-mmio of
// the unpatched one in hwassist and trap — with times from the guest's
// clock and exits and hypercalls per operation from the host's counters.
// Beside them, QEMU TCG runs the unpatched kernel with its own
// virtio-blk-device on virtio-mmio (the microvm machine) and the same
// workload; it has no exit counters to show.

// ioBenchDisk is the size of the benchmark's disk image: the span the
// blk-* benchmarks use (BLK_SPAN in pvbench.c).
const ioBenchDisk = 64 << 20

var pvisorExitRE = regexp.MustCompile(`^pvisor-exit: (\d+)$`)

var ioBenches = []string{"blk-seqwrite", "blk-seqread", "blk-randread", "net-stream", "net-rr"}

// isNetBench tells the benchmarks that need a peer VM on a segment.
func isNetBench(op string) bool { return strings.HasPrefix(op, "net-") }

// ioBenchUnit says how an operation's rate is shown: 1 MiB operations as
// MiB/s, the others as operations per second.
func ioBenchRate(op string, nsPerOp float64) string {
	if nsPerOp <= 0 {
		return "-"
	}
	if strings.HasPrefix(op, "blk-seq") || op == "net-stream" {
		return fmt.Sprintf("%.1f MiB/s", 1e9/nsPerOp)
	}
	if op == "net-rr" {
		return fmt.Sprintf("%.0f µs RTT", nsPerOp/1e3)
	}
	return fmt.Sprintf("%.0f IOPS", 1e9/nsPerOp)
}

func runBenchIO(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench io", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pvKernel := fs.String("pv-kernel", "build/guest/vmlinux-pv", "the patched kernel (pv mode)")
	nativeKernel := fs.String("native-kernel", "build/guest/vmlinux-native", "the unpatched kernel (hwassist and trap modes)")
	bzImage := fs.String("qemu-kernel", "build/guest/bzImage-native", "the unpatched kernel as QEMU boots it")
	initrd := fs.String("initrd", "build/guest/initramfs.cpio.gz", "initramfs with /bin/pvbench")
	rounds := fs.Int("rounds", 1, "rounds, modes interleaved; the table shows medians")
	modesFlag := fs.String("modes", "pv,hwassist,trap", "modes to compare, the first is the base of the ratios")
	qemu := fs.Bool("qemu", true, "also run the workload under QEMU TCG (qemu-system-x86_64, microvm, virtio-blk-device)")
	dir := fs.String("dir", "", "directory for the disk images (default: a temporary directory)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *rounds < 1 {
		fmt.Fprintln(stderr, "pvisor bench io: --rounds must be at least 1")
		return 2
	}
	only := fs.Args()
	for _, o := range only {
		if !slices.Contains(ioBenches, o) {
			fmt.Fprintf(stderr, "pvisor bench io: unknown benchmark %q: have %s\n", o, strings.Join(ioBenches, " "))
			return 2
		}
	}
	if len(only) == 0 {
		only = ioBenches
	}
	modes, err := parseBenchModes(*modesFlag, *pvKernel, *nativeKernel)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor bench io: --modes: %v\n", err)
		return 2
	}
	rd, err := readFile("initrd", *initrd, linuxBenchMem)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor bench io: %v: run `make guest guest-pv`\n", err)
		return 2
	}
	var qemuBin string
	if *qemu {
		if qemuBin, err = exec.LookPath("qemu-system-x86_64"); err != nil {
			fmt.Fprintln(stderr, "pvisor bench io: qemu-system-x86_64 not found (scripts/install-deps.sh guest installs it); --qemu=false leaves it out")
			return 2
		}
		if _, err := readFile("qemu kernel", *bzImage, linuxBenchMem); err != nil {
			fmt.Fprintf(stderr, "pvisor bench io: %v: run `make guest`\n", err)
			return 2
		}
	}
	imgDir := *dir
	if imgDir == "" {
		if imgDir, err = os.MkdirTemp("", "pvisor-bench-io"); err != nil {
			fmt.Fprintf(stderr, "pvisor bench io: %v\n", err)
			return 1
		}
		defer os.RemoveAll(imgDir)
	}
	img := filepath.Join(imgDir, "bench-io.img")
	defer os.Remove(img)

	cols := slices.Clone(modes)
	if *qemu {
		cols = append(cols, linuxBenchMode{console: "ttyS0"}) // the QEMU column
	}
	var qemuClocks []string
	results := make([]map[string][]opResult, len(cols))
	for i := range results {
		results[i] = map[string][]opResult{}
	}
	for r := 0; r < *rounds; r++ {
		for i, bm := range cols {
			// Each run starts from a fresh image of zeros on the host.
			if err := freshImage(img); err != nil {
				fmt.Fprintf(stderr, "pvisor bench io: %v\n", err)
				return 1
			}
			var res []opResult
			blk, nets := splitIOBenches(only)
			if i >= len(modes) {
				fmt.Fprintf(stderr, "pvisor bench io: round %d/%d, QEMU TCG ...\n", r+1, *rounds)
				if len(blk) > 0 {
					var clock string
					res, clock, err = runQEMUIO(qemuBin, *bzImage, *initrd, img, blk)
					qemuClocks = append(qemuClocks, clock)
				}
				if err == nil && len(nets) > 0 {
					var nr []opResult
					nr, err = runQEMUNet(qemuBin, *bzImage, *initrd, nets)
					res = append(res, nr...)
				}
			} else {
				fmt.Fprintf(stderr, "pvisor bench io: round %d/%d, %v ...\n", r+1, *rounds, bm.mode)
				if len(blk) > 0 {
					bm.disks = []hv.Disk{{Path: img}}
					res, err = runLinuxBench(bm, rd, blk)
					bm.disks = nil
				}
				if err == nil && len(nets) > 0 {
					var nr []opResult
					nr, err = runNetBench(bm, rd, nets)
					res = append(res, nr...)
				}
			}
			if err != nil {
				fmt.Fprintf(stderr, "pvisor bench io: %v\n", err)
				return 1
			}
			for _, o := range res {
				if o.name != "boot" {
					results[i][o.name] = append(results[i][o.name], o)
				}
			}
		}
	}
	printIOBench(stdout, modes, results, only, *rounds)
	if len(qemuClocks) > 0 {
		fmt.Fprintf(stdout, "\nQEMU guest clock source per round (disk runs): %s\n", strings.Join(qemuClocks, ", "))
	}
	return 0
}

func splitIOBenches(only []string) (blk, nets []string) {
	for _, o := range only {
		if isNetBench(o) {
			nets = append(nets, o)
		} else {
			blk = append(blk, o)
		}
	}
	return blk, nets
}

// The net benchmarks' two VMs on one segment: the server at netServerIP
// runs `pvbench net-server`, the client at netClientIP the benchmarks.
const (
	netServerIP = "10.0.0.1"
	netClientIP = "10.0.0.2"
)

func netSetup(ip string) string {
	return "ip link set eth0 up && ip addr add " + ip + "/24 dev eth0 && "
}

// runNetBench boots a server VM and a client VM of one mode on one segment
// of a switch and runs the net benchmarks from the client; the exits and
// hypercalls per operation are the client VM's.
func runNetBench(bm linuxBenchMode, initrd []byte, only []string) ([]opResult, error) {
	k, err := readFile("kernel", bm.kernel, linuxBenchMem)
	if err != nil {
		return nil, err
	}
	sw := netswitch.New()
	mk := func(name, cmd string, console io.Writer) (*hv.VM, error) {
		cmdline := fmt.Sprintf("console=%s panic=-1 quiet pvisor.cmd=%s", bm.console, base64.StdEncoding.EncodeToString([]byte(cmd)))
		return hv.New(hv.Config{Kernel: k, Initrd: initrd, Cmdline: cmdline, MemBytes: linuxBenchMem, Mode: bm.mode,
			Budget: mm.NewBudget(1 << 30), Console: console, Name: name, Switch: sw, NICs: []hv.NIC{{Segment: "bench"}}})
	}
	var srvOut tailWriter
	srv, err := mk("server", netSetup(netServerIP)+"/bin/pvbench net-server", &srvOut)
	if err != nil {
		return nil, err
	}
	mw := &markerWriter{}
	cli, err := mk("client", netSetup(netClientIP)+"PVBENCH_PEER="+netServerIP+" /bin/pvbench "+strings.Join(only, " "), mw)
	if err != nil {
		return nil, err
	}
	mw.vm, mw.start = cli, time.Now()
	srvDone := make(chan hv.ExitStatus, 1)
	go func() { srvDone <- srv.Run() }()
	timer := time.AfterFunc(10*time.Minute, func() { cli.Stop(124, "benchmark took over 10 minutes") })
	st := cli.Run()
	timer.Stop()
	srv.Stop(0, "benchmark done")
	<-srvDone
	tail := string(mw.tail)
	if st.Code != 0 || !strings.Contains(tail, "pvisor-exit: 0") {
		return nil, fmt.Errorf("%v: net client failed (status %d: %s); console ends:\n%s\nserver console ends:\n%s", bm.mode, st.Code, st.Reason, tail, srvOut.String())
	}
	var res []opResult
	for _, r := range mw.results {
		if r.name != "boot" {
			res = append(res, r)
		}
	}
	return res, nil
}

// tailWriter keeps the last 4 KiB written, for error messages.
type tailWriter struct {
	mu sync.Mutex
	b  []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > 4096 {
		w.b = w.b[len(w.b)-4096:]
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// runQEMUNet runs the net benchmarks between two QEMU TCG microvm guests
// joined by QEMU's socket netdev (a TCP connection on loopback carrying the
// frames), each with a virtio-net-device.
//
// A pair of TCG guests sometimes stalls before the first transfer (seen
// about once in four runs on a loaded 2-core host; the same guests under
// pvisor have not): each attempt gets 90 s, and a stalled pair is started
// again, up to three times.
func runQEMUNet(qemu, bzImage, initrd string, only []string) ([]opResult, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var res []opResult
		if res, err = runQEMUNetOnce(qemu, bzImage, initrd, only); err == nil {
			return res, nil
		}
		fmt.Fprintf(os.Stderr, "pvisor bench io: QEMU net attempt %d: %v\n", attempt, firstLine(err.Error()))
	}
	return nil, err
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func runQEMUNetOnce(qemu, bzImage, initrd string, only []string) ([]opResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	mk := func(cmd, netdev, mac string) *exec.Cmd {
		q := exec.CommandContext(ctx, qemu,
			"-M", "microvm,x-option-roms=off,rtc=on,acpi=off,pic=on,pit=on", "-accel", "tcg",
			"-m", strconv.Itoa(linuxBenchMem>>20), "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
			"-kernel", bzImage, "-initrd", initrd,
			"-append", "console=ttyS0 panic=-1 quiet tsc=reliable pvisor.cmd="+base64.StdEncoding.EncodeToString([]byte(cmd)),
			"-netdev", netdev, "-device", "virtio-net-device,netdev=n0,mac="+mac)
		q.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return q
	}
	srv := mk(netSetup(netServerIP)+"/bin/pvbench net-server", fmt.Sprintf("socket,id=n0,listen=127.0.0.1:%d", port), "52:54:00:00:00:01")
	var srvOut tailWriter
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("QEMU: %v", err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	// The listening side must be up before the other connects (a probe
	// connection would be taken for the peer): retry a refused connect.
	for i := 0; ; i++ {
		cli := mk(netSetup(netClientIP)+"PVBENCH_PEER="+netServerIP+" /bin/pvbench "+strings.Join(only, " "),
			fmt.Sprintf("socket,id=n0,connect=127.0.0.1:%d", port), "52:54:00:00:00:02")
		res, _, err := scanQEMU(cli)
		if err != nil && strings.Contains(err.Error(), "refused") && i < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			err = fmt.Errorf("%v\nserver console ends:\n%s", err, srvOut.String())
		}
		return res, err
	}
}

func freshImage(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(ioBenchDisk); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runQEMUIO runs pvbench's disk benchmarks under QEMU TCG: the microvm
// machine with the kernel's legacy PIC, PIT and RTC, no ACPI, and the
// image as a virtio-blk-device on virtio-mmio (QEMU puts the
// virtio_mmio.device= parameter on the command line itself). QEMU is
// stopped at the pvisor-exit line (microvm has no reset that ends it).
//
// The guest's clock under TCG is the TSC when the kernel's calibration
// against the PIT succeeds and jiffies (4 ms steps) when it does not; a run
// on jiffies is repeated, up to three boots, and the clock source is
// reported.
func runQEMUIO(qemu, bzImage, initrd, img string, only []string) (res []opResult, clock string, err error) {
	for try := 0; try < 3; try++ {
		if res, clock, err = runQEMUIOOnce(qemu, bzImage, initrd, img, only); err != nil || !strings.Contains(clock, "jiffies") {
			break
		}
	}
	return res, clock, err
}

var clocksourceRE = regexp.MustCompile(`^clocksource: (\S+)$`)

func runQEMUIOOnce(qemu, bzImage, initrd, img string, only []string) ([]opResult, string, error) {
	cmd := "echo clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource); /bin/pvbench " + strings.Join(only, " ")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	q := exec.CommandContext(ctx, qemu,
		"-M", "microvm,x-option-roms=off,rtc=on,acpi=off,pic=on,pit=on", "-accel", "tcg",
		"-m", strconv.Itoa(linuxBenchMem>>20), "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", bzImage, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet tsc=reliable pvisor.cmd="+base64.StdEncoding.EncodeToString([]byte(cmd)),
		"-drive", "id=d0,file="+img+",format=raw,if=none", "-device", "virtio-blk-device,drive=d0")
	q.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return scanQEMU(q)
}

// scanQEMU runs q, reads the pvbench results and the clock source from its
// console, and stops it at the pvisor-exit line.
func scanQEMU(q *exec.Cmd) ([]opResult, string, error) {
	out, err := q.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	q.Stderr = q.Stdout
	if err := q.Start(); err != nil {
		return nil, "", fmt.Errorf("QEMU: %v", err)
	}
	var res []opResult
	clock := "unknown"
	var tail []string
	exit := ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		tail = append(tail, l)
		if len(tail) > 40 {
			tail = tail[1:]
		}
		if c := clocksourceRE.FindStringSubmatch(l); c != nil {
			clock = c[1]
		}
		if s := pvbenchEndRE.FindStringSubmatch(l); s != nil {
			n, _ := strconv.ParseUint(s[2], 10, 64)
			ns, _ := strconv.ParseFloat(s[3], 64)
			if n > 0 {
				res = append(res, opResult{name: s[1], iters: n, guestNs: ns / float64(n)})
			}
		}
		if m := pvisorExitRE.FindStringSubmatch(l); m != nil {
			exit = m[1]
			break
		}
	}
	q.Process.Kill()
	q.Wait()
	if exit != "0" {
		return nil, "", fmt.Errorf("QEMU: the guest failed (pvisor-exit %q); console ends:\n%s", exit, strings.Join(tail, "\n"))
	}
	return res, clock, nil
}

func printIOBench(w io.Writer, modes []linuxBenchMode, results []map[string][]opResult, order []string, rounds int) {
	fmt.Fprintf(w, "virtio-blk and virtio-net under pvisor (engine interp) and QEMU TCG: guestkit/pvbench, median of %d round(s)\n", rounds)
	fmt.Fprintf(w, "blk-*: O_DIRECT on /dev/vda; net-*: TCP between two VMs of the mode on one segment (QEMU: two guests on a socket netdev), counters of the client VM\n")
	fmt.Fprintf(w, "rate and time per operation by the guest's clock; exits and hypercalls per operation from pvisor's counters\n")
	fmt.Fprintf(w, "transports: pv = hypercalls and event channels, hwassist and trap = virtio-mmio, qemu = QEMU's virtio-mmio\n\n")
	fmt.Fprintf(w, "%-13s %-9s %13s %12s %10s %12s %9s %10s  %s\n", "operation", "mode", "rate", "time/op", "vs "+modes[0].mode.String(), "host time/op", "exits/op", "hcalls/op", "exits by reason")
	for _, op := range order {
		var base float64
		for i := range results {
			rs := results[i][op]
			if len(rs) == 0 {
				continue
			}
			m := median(rs)
			if i == 0 {
				base = m.guestNs
			}
			ratio := "-"
			if base > 0 && i > 0 {
				ratio = fmt.Sprintf("%.2fx", m.guestNs/base)
			}
			if i >= len(modes) {
				fmt.Fprintf(w, "%-13s %-9s %13s %12s %10s %12s %9s %10s  %s\n", op, "qemu-tcg", ioBenchRate(op, m.guestNs), fmtNs(m.guestNs), ratio, "-", "-", "-", "-")
				continue
			}
			total, top := exitSummary(m.exits)
			fmt.Fprintf(w, "%-13s %-9s %13s %12s %10s %12s %9s %10s  %s\n", op, modes[i].mode, ioBenchRate(op, m.guestNs), fmtNs(m.guestNs), ratio, fmtNs(m.hostNs), fmtCount(total), fmtCount(m.hcalls), top)
		}
	}
}
