package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pvisor/pvisor/hv/lineage"
)

// Transient VMs (docs/api.md, "On-demand VMs"). A VM defined on_demand
// is not running until it is needed: a client attaching to its console,
// or connecting to one of its endpoints, starts it, or restores it from
// its latest snapshot when it has one. An endpoint is a host socket the
// daemon listens on (a Unix socket, or TCP on loopback only) forwarded to
// an address in the guest over the VM's network device: the daemon dials
// it through the host's stack and the TAP uplink of the VM's segment
// (pvisor serve --uplink), and splices the two connections. The idle
// policy stops the VM again; an open forwarded connection counts as
// activity.

// endpoint is one parsed LISTEN=TARGET of a definition.
type endpoint struct {
	network, addr string         // what the daemon listens on: unix PATH, tcp HOST:PORT
	target        netip.AddrPort // where in the guest
}

// parseEndpoint reads unix:PATH=IP:PORT or 127.0.0.1:PORT=IP:PORT.
func parseEndpoint(v string) (endpoint, error) {
	var e endpoint
	listen, target, ok := strings.Cut(v, "=")
	if !ok {
		return e, fmt.Errorf("endpoint %q: want LISTEN=GUEST-IP:PORT, LISTEN unix:PATH or 127.0.0.1:PORT", v)
	}
	t, err := netip.ParseAddrPort(target)
	if err != nil || t.Port() == 0 || !t.Addr().IsValid() || t.Addr().IsUnspecified() || t.Addr().IsMulticast() {
		return e, fmt.Errorf("endpoint %q: guest address %q: want IP:PORT", v, target)
	}
	e.target = t
	if p, ok := strings.CutPrefix(listen, "unix:"); ok {
		if !filepath.IsAbs(p) || len(p) > 100 {
			return e, fmt.Errorf("endpoint %q: socket path %q: want an absolute path of at most 100 bytes", v, p)
		}
		e.network, e.addr = "unix", filepath.Clean(p)
		return e, nil
	}
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || ap.Port() == 0 {
		return e, fmt.Errorf("endpoint %q: listen address %q: want unix:PATH or 127.0.0.1:PORT", v, listen)
	}
	if !ap.Addr().IsLoopback() {
		return e, fmt.Errorf("endpoint %q: %s is not a loopback address: an endpoint starts a VM for whoever connects, so it listens on loopback or a Unix socket only", v, ap.Addr())
	}
	e.network, e.addr = "tcp", ap.String()
	return e, nil
}

// onDemand is a VM's endpoints while the daemon serves them.
type onDemand struct {
	lns   []net.Listener
	open  sync.WaitGroup
	conns int // forwarded connections open (ent.mu)
}

// serveEndpoints starts listening on ent's endpoints. Precondition: ent
// is in d.vms.
func (d *daemon) serveEndpoints(ent *vmEntry) error {
	def := ent.rec.Definition
	if !def.OnDemand || len(def.Endpoints) == 0 {
		return nil
	}
	od := &onDemand{}
	for _, v := range def.Endpoints {
		e, err := parseEndpoint(v)
		if err != nil {
			od.close()
			return err
		}
		var ln net.Listener
		if e.network == "unix" {
			ln, err = listenAPI(e.addr, 0o600)
		} else {
			ln, err = net.Listen("tcp", e.addr)
		}
		if err != nil {
			od.close()
			return fmt.Errorf("endpoint %s: %v", v, err)
		}
		od.lns = append(od.lns, ln)
		go d.acceptLoop(ent, ln, e)
	}
	ent.mu.Lock()
	ent.od = od
	ent.mu.Unlock()
	return nil
}

func (od *onDemand) close() {
	for _, ln := range od.lns {
		if ul, ok := ln.(*net.UnixListener); ok {
			removeOwnSocket(ul.Addr().String(), ul)
		} else {
			ln.Close()
		}
	}
}

// acceptLoop serves one endpoint until its listener closes.
func (d *daemon) acceptLoop(ent *vmEntry, ln net.Listener, e endpoint) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go d.forward(ent, c, e)
	}
}

// onDemandWait bounds how long a connection waits for its VM.
const onDemandWait = 5 * time.Minute

// ensureRunning starts ent's VM if it is not running: restored from its
// latest snapshot if it has one (how is "from snapshot" or "cold boot"),
// booted otherwise. Concurrent callers wait for the one start.
func (d *daemon) ensureRunning(ent *vmEntry) (how string, err error) {
	for t0 := time.Now(); time.Since(t0) < onDemandWait; time.Sleep(10 * time.Millisecond) {
		ent.mu.Lock()
		vm, busy, gone := ent.vm, ent.busy, ent.gone
		var snap string
		if n := len(ent.rec.Status.Snapshots); n > 0 {
			snap = ent.rec.Status.Snapshots[n-1].Path
		}
		ent.mu.Unlock()
		switch {
		case gone:
			return "", errorf(404, "VM %q was destroyed", ent.rec.Definition.Name)
		case vm != nil && !busy:
			// Running, or paused by the operator: then the connection
			// waits in the guest until it is resumed.
			return "running", nil
		case busy:
			continue
		}
		var req *restoreRequest
		how = "cold boot"
		if snap != "" {
			req, how = &restoreRequest{Snapshot: snap}, "from snapshot"
		}
		err := d.start(ent, req)
		if err != nil && req != nil && !strings.Contains(err.Error(), "try again") {
			// A snapshot that no longer restores (moved, refused by the
			// rollback guard) must not make the VM unreachable: boot it.
			ent.log(lineage.Event{Event: "on-demand", Detail: fmt.Sprintf("restoring %s failed, booting instead: %v", snap, err)})
			req, how = nil, "cold boot"
			err = d.start(ent, nil)
		}
		var ae *apiError
		if errors.As(err, &ae) && ae.code == 409 && strings.Contains(ae.msg, "try again") {
			continue
		}
		return how, err
	}
	return "", errorf(503, "VM %q did not start within %v", ent.rec.Definition.Name, onDemandWait)
}

// forward starts the VM if needed, connects to the guest address and
// splices the client's connection to it; the time from the client's
// connect to the guest accepting is an event.
func (d *daemon) forward(ent *vmEntry, c net.Conn, e endpoint) {
	defer c.Close()
	t0 := time.Now()
	how, err := d.ensureRunning(ent)
	if err != nil {
		ent.log(lineage.Event{Event: "on-demand", Detail: fmt.Sprintf("connection on %s refused: %v", e.addr, err)})
		return
	}
	ent.mu.Lock()
	if ent.od != nil {
		ent.od.conns++
	}
	ent.mu.Unlock()
	defer func() {
		ent.mu.Lock()
		if ent.od != nil {
			ent.od.conns--
		}
		ent.rec.Status.LastActive = time.Now().UTC()
		ent.mu.Unlock()
	}()
	var g net.Conn
	for {
		g, err = net.DialTimeout("tcp", e.target.String(), time.Second)
		if err == nil {
			break
		}
		if time.Since(t0) > onDemandWait {
			ent.log(lineage.Event{Event: "on-demand", Detail: fmt.Sprintf("%s did not accept within %v: %v", e.target, onDemandWait, err)})
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer g.Close()
	took := time.Since(t0)
	ent.touch()
	ent.log(lineage.Event{Event: "on-demand", Detail: fmt.Sprintf("connection on %s accepted by %s after %v (%s)", e.addr, e.target, took.Round(time.Microsecond), how)})
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(g, c)
	go cp(c, g)
	<-done
	<-done
}
