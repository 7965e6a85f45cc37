package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

func init() {
	register(command{"top", "a live view of the daemon's VMs, like xentop (--once --json: one sample for scripts)", runTop})
	register(command{"stats", "a running daemon VM's counters, as pvisor run --stats prints them", clientStats})
}

func clientStats(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("stats", stderr)
	return clientRun(f, args, 1, "VM", stderr, func(c *apiClient, a []string) error {
		return c.do("GET", vmPath(a[0], "/stats"), nil, stdout)
	})
}

// runTop is `pvisor top`: every --interval it reads /v1/stats and shows,
// per VM, the rates since the previous reading. Plain ANSI: the screen is
// cleared and redrawn, so any terminal (and tmux) shows it.
func runTop(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("top", stderr)
	once := f.fs.Bool("once", false, "print one reading and exit")
	asJSON := f.fs.Bool("json", false, "with --once: the sample as JSON (cumulative counters)")
	interval := f.fs.Duration("interval", time.Second, "refresh interval")
	iterations := f.fs.Int("n", 0, "stop after this many refreshes (0: until interrupted)")
	return clientRun(f, args, 0, "[--once [--json]] [--interval D] [-n N]", stderr, func(c *apiClient, a []string) error {
		if *interval < 100*time.Millisecond {
			return fmt.Errorf("--interval %v: at least 100ms", *interval)
		}
		read := func() ([]vmSample, error) {
			var s []vmSample
			return s, c.do("GET", apiVersion+"/stats", nil, &s)
		}
		prev, err := read()
		if err != nil {
			return err
		}
		if *once && *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(prev)
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		for i := 0; *iterations == 0 || i < *iterations; i++ {
			select {
			case <-sigs:
				return nil
			case <-time.After(*interval):
			}
			cur, err := read()
			if err != nil {
				return err
			}
			if !*once {
				io.WriteString(stdout, "\x1b[H\x1b[2J")
			}
			io.WriteString(stdout, renderTop(prev, cur))
			prev = cur
			if *once {
				return nil
			}
		}
		return nil
	})
}

// renderTop is one screen: a row per VM, with the rates between two
// samples.
func renderTop(prev, cur []vmSample) string {
	old := map[string]vmSample{}
	for _, s := range prev {
		old[s.Name] = s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pvisor top - %s - %d VMs\n", time.Now().Format("15:04:05"), len(cur))
	fmt.Fprintf(&b, "%-16s %-8s %6s %6s %9s %9s %8s %8s %8s %9s %9s %6s %6s %7s  %s\n",
		"NAME", "STATE", "CPU%", "STEAL%", "EXITS/s", "HCALLS/s", "MEM MiB", "RES MiB", "TGT MiB", "BLK KB/s", "NET KB/s", "PRIV", "REFUSE", "SYSCALL", "TOP EXITS / HYPERCALLS per s")
	for _, s := range cur {
		p, ok := old[s.Name]
		dt := s.Time.Sub(p.Time).Seconds()
		if !ok || dt <= 0 || p.State == stateStopped {
			p, dt = vmSample{Exits: map[string]uint64{}, Hypercalls: map[string]uint64{}}, 0
		}
		rate := func(a, b float64) float64 {
			if dt <= 0 || a < b {
				return 0
			}
			return (a - b) / dt
		}
		var exits, calls float64
		er := map[string]float64{}
		for k, v := range s.Exits {
			r := rate(float64(v), float64(p.Exits[k]))
			er[k], exits = r, exits+r
		}
		hr := map[string]float64{}
		for k, v := range s.Hypercalls {
			r := rate(float64(v), float64(p.Hypercalls[k]))
			hr[k], calls = r, calls+r
		}
		fmt.Fprintf(&b, "%-16s %-8s %6.1f %6.1f %9.0f %9.0f %8d %8d %8d %9.1f %9.1f %6d %6d %7d  %s | %s\n",
			trunc(s.Name, 16), s.State, 100*rate(s.CPUSec, p.CPUSec), 100*rate(s.StealSec, p.StealSec), exits, calls,
			s.MemReserved>>20, s.MemResident>>20, s.MemTarget>>20, rate(float64(s.BlockBytes), float64(p.BlockBytes))/1024,
			rate(float64(s.NetBytes), float64(p.NetBytes))/1024, s.PrivilegedAfterStart, s.RefusedHypercalls, s.SyscallViolations,
			topRates(er, 3), topRates(hr, 3))
	}
	return b.String()
}

// topRates names the n largest non-zero rates.
func topRates(m map[string]float64, n int) string {
	type kv struct {
		k string
		v float64
	}
	var l []kv
	for k, v := range m {
		if v >= 0.5 {
			l = append(l, kv{k, v})
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	var parts []string
	for i := 0; i < len(l) && i < n; i++ {
		parts = append(parts, fmt.Sprintf("%s %.0f", l[i].k, l[i].v))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
