package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"
)

// The CLI verbs that are clients of `pvisor serve` (docs/api.md), in the
// spirit of Xen's xl: create, start, list, console, pause, resume, stop,
// destroy, mem-set, sched-credit, snapshot, restore, device, logs,
// events, patch-level.

func init() {
	for _, c := range []command{
		{"create", "define a VM in the daemon (flags as pvisor run's, or --config FILE.toml)", clientCreate},
		{"start", "start a defined VM", clientSimple("start")},
		{"list", "the daemon's VMs: state, resources, activity, patch level, snapshots, devices", clientList},
		{"console", "attach to a VM's console (Ctrl-] detaches; the VM goes on)", clientConsole},
		{"pause", "pause a VM", clientSimple("pause")},
		{"resume", "resume a paused VM", clientSimple("resume")},
		{"stop", "stop a running VM", clientSimple("stop")},
		{"destroy", "forget a stopped VM's definition (its lineage and snapshots stay)", clientDestroy},
		{"mem-set", "set a running VM's balloon target: mem-set VM SIZE", clientMemSet},
		{"sched-credit", "set a VM's CPU weight and cap: sched-credit [--weight N] [--cap PCT] VM", clientSched},
		{"restore", "start a VM from a snapshot: restore [--allow-rollback] VM [SNAP]", clientRestore},
		{"device", "hot-plug: device attach VM disk=..|net=..|rng, device detach VM SLOT", clientDevice},
		{"logs", "a VM's console output (the last 256 KiB)", clientLogs},
		{"events", "a VM's event log", clientEvents},
		{"patch-level", "set a running VM's patch level: patch-level VM N", clientPatchLevel},
		{"grant", "let a monitor VM read another's memory and registers: grant MONITOR introspect TARGET", clientGrant(true)},
		{"revoke", "take a grant back: revoke MONITOR introspect TARGET", clientGrant(false)},
	} {
		register(c)
	}
}

// clientFlags are every client verb's flags.
type clientFlags struct {
	fs       *flag.FlagSet
	api      *string
	stateDir *string
}

func newClientFlags(name string, stderr io.Writer) *clientFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &clientFlags{fs: fs,
		api:      fs.String("api", "", "the daemon's API socket (default $PVISOR_API, else STATE-DIR/api.sock)"),
		stateDir: fs.String("state-dir", defaultStateDir(), stateDirUsage)}
}

func (f *clientFlags) client() *apiClient {
	p := *f.api
	if p == "" {
		p = defaultAPISocket(*f.stateDir)
	}
	return newAPIClient(p)
}

// do sends a request and decodes a 2xx reply into out (nil: discarded);
// a non-2xx reply's message is the error.
func (c *apiClient) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://pvisor"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w on %s (%v): start one with pvisor serve", errNoDaemon, c.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err := w.Write(b)
		return err
	}
	return json.Unmarshal(b, out)
}

// parseInterspersed parses flags before, between and after the
// positional arguments (pvisor create NAME --kernel K), which it returns;
// "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func vmPath(name string, rest ...string) string {
	return apiVersion + "/vms/" + url.PathEscape(name) + strings.Join(rest, "")
}

// clientRun parses, checks the argument count, and reports errors the
// same way for every verb.
func clientRun(f *clientFlags, args []string, nargs int, usage string, stderr io.Writer, fn func(c *apiClient, a []string) error) int {
	f.fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pvisor %s %s\n", f.fs.Name(), usage)
		f.fs.PrintDefaults()
	}
	a, err := parseInterspersed(f.fs, args)
	if err != nil {
		return 2
	}
	if nargs >= 0 && len(a) != nargs || nargs < 0 && len(a) < -nargs-1 {
		f.fs.Usage()
		return 2
	}
	if err := fn(f.client(), a); err != nil {
		fmt.Fprintf(stderr, "pvisor %s: %v\n", f.fs.Name(), err)
		return 1
	}
	return 0
}

func clientSimple(op string) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		f := newClientFlags(op, stderr)
		return clientRun(f, args, 1, "VM", stderr, func(c *apiClient, a []string) error {
			var v apiVM
			if err := c.do("POST", vmPath(a[0], "/", op), nil, &v); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %s\n", v.Name, v.State)
			return nil
		})
	}
}

func clientCreate(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("create", stderr)
	fs := f.fs
	config := fs.String("config", "", "a TOML file with the definition's keys (name, kernel, initrd, cmdline, mem, vcpus, mode, cpu_weight, cpu_cap, disks, nets, rng, owner)")
	var def Definition
	fs.StringVar(&def.Kernel, "kernel", "", "guest kernel")
	fs.StringVar(&def.Initrd, "initrd", "", "initramfs image")
	fs.StringVar(&def.Cmdline, "cmdline", "", "kernel command line")
	fs.StringVar(&def.Mem, "mem", "", "memory (default 256M)")
	fs.IntVar(&def.VCPUs, "vcpus", 0, "vCPUs (default 1)")
	fs.StringVar(&def.Mode, "mode", "", "pv (default), trap or hwassist")
	fs.IntVar(&def.Weight, "cpu-weight", 0, "CPU weight")
	fs.IntVar(&def.Cap, "cpu-cap", 0, "CPU cap, percent of one host CPU")
	fs.BoolVar(&def.RNG, "rng", false, "a virtio-rng device")
	fs.StringVar(&def.Owner, "owner", "", "an owner label for the inventory")
	fs.StringVar(&def.IdleAfter, "idle-after", "", "idle policy: stop the VM once idle this long (10s or more, e.g. 15m)")
	fs.StringVar(&def.IdleAction, "idle-action", "", "idle policy: stop (default) or snapshot-stop")
	fs.StringVar(&def.ExpectMeasurements, "expect-measurements", "", "launch policy: refuse a boot that measures otherwise than this file (pvisor measure) says")
	fs.BoolVar(&def.OnDemand, "on-demand", false, "start the VM (or restore its latest snapshot) when a client attaches to its console or connects to an endpoint")
	var disks, nets, endpoints specList
	fs.Var(&endpoints, "endpoint", "with --on-demand: LISTEN=GUEST-IP:PORT, LISTEN unix:PATH or 127.0.0.1:PORT, forwarded into the guest; repeatable")
	fs.Var(&disks, "disk", "a disk, as pvisor run --disk; repeatable")
	fs.Var(&nets, "net", "a NIC, as pvisor run --net; repeatable")
	return clientRun(f, args, -1, "(NAME --kernel K [flags] | --config FILE)", stderr, func(c *apiClient, a []string) error {
		base := ""
		if *config != "" {
			if len(a) > 0 || fs.NFlag() > 1+boolInt(fs.Lookup("api").Value.String() != "")+boolInt(*f.stateDir != defaultStateDir()) {
				return errors.New("--config FILE holds the whole definition: give no name or other definition flags")
			}
			b, err := readFile("config", *config, 1<<20)
			if err != nil {
				return err
			}
			md, err := toml.Decode(string(b), &def)
			if err != nil {
				return fmt.Errorf("%s: %v", *config, err)
			}
			if und := md.Undecoded(); len(und) > 0 {
				return fmt.Errorf("%s: unknown key %q", *config, und[0].String())
			}
			base = filepath.Dir(*config)
		} else {
			if len(a) != 1 {
				return errors.New("give the VM's name")
			}
			def.Name, def.Disks, def.Nets, def.Endpoints = a[0], disks, nets, endpoints
		}
		// Paths are the client's: the daemon needs them absolute.
		absTo := func(p string) string {
			if p == "" || filepath.IsAbs(p) {
				return p
			}
			if base != "" {
				return filepath.Join(base, p)
			}
			abs, err := filepath.Abs(p)
			if err != nil {
				return p
			}
			return abs
		}
		def.Kernel, def.Initrd, def.ExpectMeasurements = absTo(def.Kernel), absTo(def.Initrd), absTo(def.ExpectMeasurements)
		for i, d := range def.Disks {
			p, rest, _ := strings.Cut(d, ",")
			def.Disks[i] = absTo(p)
			if rest != "" {
				def.Disks[i] += "," + rest
			}
		}
		var v apiVM
		if err := c.do("POST", apiVersion+"/vms", &def, &v); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: defined (%s, %d MiB, %d vCPU)\n", v.Name, v.Mode, v.MemBytes>>20, v.VCPUs)
		return nil
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func clientList(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("list", stderr)
	asJSON := f.fs.Bool("json", false, "print the API's JSON")
	idleAfter := f.fs.Duration("idle-after", 0, "mark VMs idle for longer than this (0: no marks)")
	return clientRun(f, args, 0, "[--json] [--idle-after D]", stderr, func(c *apiClient, a []string) error {
		var vms []apiVM
		if err := c.do("GET", apiVersion+"/vms", nil, &vms); err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(vms)
		}
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tMODE\tVCPUS\tMEM MiB\tRESIDENT MiB\tCREATED\tLAST ACTIVE\tIDLE\tPATCH\tSNAPS\tDEVICES\tOWNER\t")
		for _, v := range vms {
			last, idle := "-", "-"
			if v.LastActive != nil {
				last = v.LastActive.Local().Format("01-02 15:04:05")
				idle = (time.Duration(v.IdleSec) * time.Second).String()
				if *idleAfter > 0 && v.IdleSec > idleAfter.Seconds() {
					idle += " IDLE"
				}
			}
			patch := strconv.FormatUint(v.PatchLevel, 10)
			if v.State == stateStopped {
				patch = "-"
			} else if v.RolledBack {
				patch += " ROLLED-BACK"
			}
			owner := v.Owner
			if owner == "" {
				owner = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t\n", v.Name, v.State, v.Mode, v.VCPUs,
				v.MemBytes>>20, v.Resident>>20, v.Created.Local().Format("01-02 15:04:05"), last, idle, patch,
				v.Snapshots, len(v.Devices), owner)
		}
		return tw.Flush()
	})
}

func clientDestroy(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("destroy", stderr)
	return clientRun(f, args, 1, "VM", stderr, func(c *apiClient, a []string) error {
		if err := c.do("DELETE", vmPath(a[0]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: destroyed\n", a[0])
		return nil
	})
}

func clientMemSet(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("mem-set", stderr)
	return clientRun(f, args, 2, "VM SIZE", stderr, func(c *apiClient, a []string) error {
		var v apiVM
		if err := c.do("PUT", vmPath(a[0], "/memory"), memoryRequest{Target: a[1]}, &v); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: target %d MiB\n", v.Name, v.Target>>20)
		return nil
	})
}

func clientSched(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("sched-credit", stderr)
	weight := f.fs.Int("weight", -1, "CPU weight")
	capPct := f.fs.Int("cap", -1, "CPU cap, percent of one host CPU (0 = none)")
	return clientRun(f, args, 1, "[--weight N] [--cap PCT] VM", stderr, func(c *apiClient, a []string) error {
		var req schedRequest
		if *weight >= 0 {
			req.Weight = weight
		}
		if *capPct >= 0 {
			req.Cap = capPct
		}
		var v apiVM
		if err := c.do("PUT", vmPath(a[0], "/sched"), req, &v); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: weight %d, cap %d%%\n", v.Name, v.Weight, v.Cap)
		return nil
	})
}

func clientRestore(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("restore", stderr)
	var req restoreRequest
	f.fs.BoolVar(&req.AllowRollback, "allow-rollback", false, "restore below the lineage's patch level (flagged, logged)")
	f.fs.BoolVar(&req.Paused, "paused", false, "leave it paused")
	f.fs.StringVar(&req.KeyFile, "key-file", "", "the snapshot's key file")
	f.fs.StringVar(&req.PassphraseFile, "passphrase-file", "", "the snapshot's passphrase file")
	return clientRun(f, args, -2, "[--allow-rollback] [--paused] [--key-file F | --passphrase-file F] VM [SNAP]", stderr, func(c *apiClient, a []string) error {
		if len(a) > 2 {
			return errors.New("give the VM and at most one snapshot")
		}
		if len(a) == 2 {
			req.Snapshot = a[1]
		}
		for _, p := range []*string{&req.Snapshot, &req.KeyFile, &req.PassphraseFile} {
			if *p != "" {
				abs, err := filepath.Abs(*p)
				if err != nil {
					return err
				}
				*p = abs
			}
		}
		var v apiVM
		if err := c.do("POST", vmPath(a[0], "/restore"), req, &v); err != nil {
			return err
		}
		msg := fmt.Sprintf("%s: %s, restored, generation %s, patch level %d of %d", v.Name, v.State, v.Generation, v.PatchLevel, v.Highest)
		if v.RolledBack {
			msg += ", ROLLED BACK"
		}
		fmt.Fprintln(stdout, msg)
		return nil
	})
}

func clientDevice(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("device", stderr)
	force := f.fs.Bool("force", false, "detach: remove at once instead of asking the guest")
	return clientRun(f, args, 3, "attach VM disk=PATH[,..]|net=segment=..|rng  |  [--force] detach VM SLOT", stderr, func(c *apiClient, a []string) error {
		switch a[0] {
		case "attach":
			var req deviceRequest
			switch v := a[2]; {
			case v == "rng":
				req.RNG = true
			case strings.HasPrefix(v, "disk="):
				req.Disk = strings.TrimPrefix(v, "disk=")
			case strings.HasPrefix(v, "net="):
				req.Net = strings.TrimPrefix(v, "net=")
			default:
				return fmt.Errorf("attach %q: want disk=..., net=... or rng", v)
			}
			var out map[string]int
			if err := c.do("POST", vmPath(a[1], "/devices"), req, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: slot %d\n", a[1], out["slot"])
		case "detach":
			q := ""
			if *force {
				q = "?force=true"
			}
			if err := c.do("DELETE", vmPath(a[1], "/devices/", url.PathEscape(a[2]), q), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: slot %s detached\n", a[1], a[2])
		default:
			return fmt.Errorf("device %q: want attach or detach", a[0])
		}
		return nil
	})
}

func clientLogs(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("logs", stderr)
	return clientRun(f, args, 1, "VM", stderr, func(c *apiClient, a []string) error {
		return c.do("GET", vmPath(a[0], "/logs"), nil, stdout)
	})
}

func clientEvents(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("events", stderr)
	return clientRun(f, args, 1, "VM", stderr, func(c *apiClient, a []string) error {
		var evs []json.RawMessage
		if err := c.do("GET", vmPath(a[0], "/events"), nil, &evs); err != nil {
			return err
		}
		for _, e := range evs {
			var buf bytes.Buffer
			json.Compact(&buf, e)
			fmt.Fprintln(stdout, buf.String())
		}
		return nil
	})
}

func clientPatchLevel(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("patch-level", stderr)
	return clientRun(f, args, 2, "VM N", stderr, func(c *apiClient, a []string) error {
		n, err := parsePatchLevel(a[1])
		if err != nil {
			return err
		}
		var v apiVM
		if err := c.do("PUT", vmPath(a[0], "/patch-level"), patchLevelRequest{Level: n}, &v); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: patch level %d, lineage's highest %d\n", v.Name, v.PatchLevel, v.Highest)
		return nil
	})
}

// clientConsole is `pvisor console VM`: the console over the API's
// upgraded connection. On a terminal, keys go to the guest raw and Ctrl-]
// detaches; otherwise standard input is sent until it ends, then output
// is shown for --linger more and the client detaches.
func clientConsole(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("console", stderr)
	linger := f.fs.Duration("linger", time.Second, "without a terminal: how long to keep showing output after standard input ends")
	until := f.fs.String("until", "", "without a terminal: detach as soon as the output (after the backlog) contains this text, or after --linger")
	return clientRun(f, args, 1, "VM", stderr, func(c *apiClient, a []string) error {
		conn, err := net.Dial("unix", c.path)
		if err != nil {
			return fmt.Errorf("%w on %s (%v)", errNoDaemon, c.path, err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: pvisor\r\nUpgrade: pvisor-console\r\nConnection: Upgrade\r\n\r\n", vmPath(a[0], "/console"))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			var e struct{ Error string }
			if json.Unmarshal(b, &e) == nil && e.Error != "" {
				return errors.New(e.Error)
			}
			return fmt.Errorf("console: %s", resp.Status)
		}
		outDone := make(chan struct{})
		var outMu sync.Mutex
		var got []byte // output so far, kept only with --until
		more := make(chan struct{}, 1)
		go func() {
			defer close(outDone)
			buf := make([]byte, 4096)
			for {
				n, err := br.Read(buf)
				stdout.Write(buf[:n])
				if *until != "" && n > 0 {
					outMu.Lock()
					got = append(got, buf[:n]...)
					outMu.Unlock()
					select {
					case more <- struct{}{}:
					default:
					}
				}
				if err != nil {
					return
				}
			}
		}()
		if restore, ok := rawTerminal(int(os.Stdin.Fd())); ok {
			defer restore()
			fmt.Fprintf(stderr, "pvisor: attached to %s; Ctrl-] detaches\r\n", a[0])
			quit := make(chan struct{})
			go func() {
				io.Copy(conn, &escapeReader{r: os.Stdin, quit: func() { close(quit) }})
			}()
			select {
			case <-quit:
			case <-outDone:
			}
			fmt.Fprintf(stderr, "\r\npvisor: detached from %s\r\n", a[0])
			return nil
		}
		// The backlog comes first, in one write: let it arrive, so that
		// --until looks only at what the guest prints after the input.
		mark := 0
		if *until != "" {
			time.Sleep(200 * time.Millisecond)
			outMu.Lock()
			mark = len(got)
			outMu.Unlock()
		}
		io.Copy(conn, os.Stdin)
		deadline := time.After(*linger)
		for {
			select {
			case <-outDone:
				return nil
			case <-deadline:
				return nil
			case <-more:
				outMu.Lock()
				found := bytes.Contains(got[mark:], []byte(*until))
				outMu.Unlock()
				if found {
					return nil
				}
			}
		}
	})
}

func clientGrant(give bool) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		name := "revoke"
		if give {
			name = "grant"
		}
		f := newClientFlags(name, stderr)
		return clientRun(f, args, 3, "MONITOR introspect TARGET", stderr, func(c *apiClient, a []string) error {
			if a[1] != "introspect" {
				return fmt.Errorf("%q: the one kind of grant is introspect", a[1])
			}
			var out map[string]any
			var err error
			if give {
				err = c.do("POST", vmPath(a[0], "/grants"), grantRequest{Kind: "introspect", Target: a[2]}, &out)
			} else {
				err = c.do("DELETE", vmPath(a[0], "/grants/", url.PathEscape(a[2])), nil, &out)
			}
			if err != nil {
				return err
			}
			if give {
				fmt.Fprintf(stdout, "%s may read %s: introspection grant handle %v\n", a[0], a[2], out["handle"])
			} else {
				fmt.Fprintf(stdout, "%s may no longer read %s\n", a[0], a[2])
			}
			return nil
		})
	}
}
