package main

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCtlConnHostile: a VM process's control socket is not trusted. A
// reply over maxCtlReply, a reply that never comes and one that is not
// JSON are errors, each within the connection's deadline, and a good
// reply after them is read on a new connection.
func TestCtlConnHostile(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Each connection gets the next behaviour.
	behaviours := []func(c net.Conn){
		func(c net.Conn) { c.Write(bytes.Repeat([]byte("x"), 3*maxCtlReply)) }, // endless line
		func(c net.Conn) { time.Sleep(3 * time.Second) },                       // silence
		func(c net.Conn) { c.Write([]byte("{not json\n")) },
		func(c net.Conn) { c.Write([]byte(`{"slot":7}` + "\n")) },
	}
	go func() {
		for _, b := range behaviours {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				c.Read(buf)
				b(c)
			}()
		}
	}()
	cc := &ctlConn{sock: sock, name: "vm", timeout: time.Second}
	for i, want := range []string{"reply over", "i/o timeout", "bad reply"} {
		t0 := time.Now()
		_, err := cc.ask(ctlRequest{Op: "stats"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("case %d: %v, want an error with %q", i, err, want)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("case %d: took %v", i, d)
		}
	}
	rep, err := cc.ask(ctlRequest{Op: "device-attach"})
	if err != nil || rep.Slot == nil || *rep.Slot != 7 {
		t.Errorf("the good reply: %+v, %v", rep, err)
	}
}
