package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pvisor/pvisor/hv/audit"
	"github.com/pvisor/pvisor/hv/sandbox"
	"github.com/pvisor/pvisor/sched/cgroup"
)

func init() {
	register(command{"serve", "run the daemon that owns VMs, with an HTTP/JSON API on a Unix socket (docs/api.md)", runServe})
}

// defaultAPISocket is the API socket's default: $PVISOR_API, else
// api.sock in the state directory.
func defaultAPISocket(stateDir string) string {
	if p := os.Getenv("PVISOR_API"); p != "" {
		return p
	}
	return filepath.Join(stateDir, "api.sock")
}

// runServe is `pvisor serve`.
func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", defaultStateDir(), stateDirUsage)
	api := fs.String("api", "", "the API's Unix socket (default $PVISOR_API, else STATE-DIR/api.sock)")
	mode := fs.String("api-mode", "0600", "the API socket's permissions (octal): who may connect is who may control every VM")
	workers := fs.Int("workers", 0, "scheduler workers (0 = one per host CPU)")
	memBudget := fs.String("mem-budget", "", "host memory all VMs together may reserve (default three quarters of host RAM)")
	var uplinks specList
	fs.Var(&uplinks, "uplink", "connect a segment of the VMs' switch to the host through a TAP interface: segment=NAME,tap=IFNAME; repeatable (needs CAP_NET_ADMIN)")
	isolate := fs.Bool("isolate", false, "run each VM in a pvisor run process of its own, confined as any, held by control groups to its CPU weight and cap and its memory (docs/security.md, \"One process per VM\")")
	auditOn := fs.Bool("audit", false, "with --isolate: watch the VM processes' system calls from outside (eBPF, needs root); a call outside the VMM's profile is a syscall-violation event and counts in pvisor top")
	seccompMode := fs.String("seccomp", "kill", "with --isolate: the VM processes' --seccomp (kill, or log to let a call outside the profile through, logged)")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this socket: unix:PATH (mode 0600) or HOST:PORT (keep it on loopback)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pvisor serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var perm uint32
	if _, err := fmt.Sscanf(*mode, "%o", &perm); err != nil || perm > 0o777 || perm&0o600 != 0o600 {
		fmt.Fprintf(stderr, "pvisor serve: --api-mode %q: want octal permissions that include 0600\n", *mode)
		return 2
	}
	if err := checkWorkers(*workers); err != nil {
		fmt.Fprintf(stderr, "pvisor serve: --workers: %v\n", err)
		return 2
	}
	budget := hostBudget()
	if *memBudget != "" {
		var err error
		if budget, err = parseSize(*memBudget); err != nil {
			fmt.Fprintf(stderr, "pvisor serve: --mem-budget: %v\n", err)
			return 2
		}
	}
	d, err := openDaemon(*stateDir, budget, *workers)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor serve: %v\n", err)
		return 2
	}
	if *isolate {
		if len(uplinks) > 0 {
			d.shutdown("the daemon could not start")
			fmt.Fprintln(stderr, "pvisor serve: --isolate: not with --uplink: the switch's segments do not span processes yet")
			return 2
		}
		if d.isoGroup, err = cgroup.New(d.isoGroupName()); err != nil {
			d.shutdown("the daemon could not start")
			fmt.Fprintf(stderr, "pvisor serve: --isolate: %v\n", err)
			return 2
		}
		if _, err := sandbox.ParseMode(*seccompMode); err != nil {
			d.shutdown("the daemon could not start")
			fmt.Fprintf(stderr, "pvisor serve: %v\n", err)
			return 2
		}
		d.isolate, d.seccomp = true, *seccompMode
		if *auditOn {
			if d.mon, err = audit.Open(); err != nil {
				d.shutdown("the daemon could not start")
				fmt.Fprintf(stderr, "pvisor serve: --audit: %v (it needs root, and a kernel with CONFIG_BPF_EVENTS)\n", err)
				return 2
			}
			stopAudit := make(chan struct{})
			defer close(stopAudit)
			go d.auditLoop(stopAudit)
		}
	} else if *auditOn || *seccompMode != "kill" {
		d.shutdown("the daemon could not start")
		fmt.Fprintln(stderr, "pvisor serve: --audit and --seccomp go with --isolate: without it the VMs run in the daemon's process, which is not confined")
		return 2
	}
	for _, v := range uplinks {
		u, err := parseUplink(v)
		if err == nil {
			var tap interface{ Close() error }
			tap, err = d.sw.ConnectTAP(u.segment, u.tap)
			if err == nil {
				defer tap.Close()
			}
		}
		if err != nil {
			d.shutdown("the daemon could not start")
			fmt.Fprintf(stderr, "pvisor serve: --uplink: %v\n", err)
			return 2
		}
	}
	path := *api
	if path == "" {
		path = defaultAPISocket(d.store.Dir())
	}
	ln, err := listenAPI(path, os.FileMode(perm))
	if err != nil {
		d.shutdown("the daemon could not start")
		fmt.Fprintf(stderr, "pvisor serve: --api: %v\n", err)
		return 2
	}
	srv := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second}
	if *metrics != "" {
		var mln net.Listener
		if p, ok := strings.CutPrefix(*metrics, "unix:"); ok {
			mln, err = listenAPI(p, 0o600)
			if err == nil {
				defer removeOwnSocket(p, mln)
			}
		} else {
			mln, err = net.Listen("tcp", *metrics)
		}
		if err != nil {
			d.shutdown("the daemon could not start")
			removeOwnSocket(path, ln)
			fmt.Fprintf(stderr, "pvisor serve: --metrics: %v\n", err)
			return 2
		}
		msrv := &http.Server{Handler: d.metricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
		fmt.Fprintf(stderr, "pvisor serve: metrics on %s\n", mln.Addr())
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "pvisor serve: %d VMs defined; API on %s (state in %s)\n", len(d.list()), path, d.store.Dir())
	select {
	case s := <-sigs:
		fmt.Fprintf(stderr, "pvisor serve: %v: stopping the running VMs\n", s)
	case err := <-served:
		fmt.Fprintf(stderr, "pvisor serve: %v\n", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	srv.Shutdown(ctx)
	cancel()
	d.shutdown("stopped with the daemon (pvisor serve ended)")
	removeOwnSocket(path, ln)
	return 0
}

// listenAPI listens on the Unix socket path with permissions perm. A live
// socket, or anything that is not a socket, is refused; a stale socket is
// replaced.
func listenAPI(path string, perm os.FileMode) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is a %s, not a socket", path, fileType(fi.Mode()))
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another pvisor serve is listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	// The socket is created with no permission for anyone but the owner,
	// then opened up to perm: never more open than asked, not even for a
	// moment.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, perm); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// removeOwnSocket closes ln and removes path if it is still ln's socket.
func removeOwnSocket(path string, ln net.Listener) {
	fi, err := os.Lstat(path)
	ln.Close()
	if err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
}

// apiClient talks to a pvisor serve.
type apiClient struct {
	path string
	http *http.Client
}

func newAPIClient(path string) *apiClient {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &apiClient{path: path, http: &http.Client{Transport: tr, Timeout: 15 * time.Minute}}
}

var errNoDaemon = errors.New("no pvisor serve")
