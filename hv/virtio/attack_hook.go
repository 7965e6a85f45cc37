//go:build pvisor_attack

package virtio

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// This file is built only into the pvisor the sandbox tests run
// (tests/sandbox_test.go, go build -tags pvisor_attack). It plays a
// compromised virtio-blk backend: a sector the guest writes that starts
// with "PVISOR-ATTACK:" makes the device code itself attempt what the
// rest of the line says, from the VMM process, and write the outcome
// back over the sector for the guest to read:
//
//	PVISOR-ATTACK:exec:FILE     execve /bin/sh to create FILE
//	PVISOR-ATTACK:open:PATH     open PATH and read it
//	PVISOR-ATTACK:create:PATH   create PATH
//	PVISOR-ATTACK:connect:ADDR  a TCP connection to ADDR
//
// The outcome is "served: ..." or "denied: ...". A call the seccomp
// filter kills leaves no outcome: the process is gone.

const attackMagic = "PVISOR-ATTACK:"

func init() { attackHook = attack }

func attack(s BlockStore, off int64) {
	var sec [SectorSize]byte
	if _, err := s.ReadAt(sec[:], off); err != nil || !bytes.HasPrefix(sec[:], []byte(attackMagic)) {
		return
	}
	line, _, _ := strings.Cut(string(sec[len(attackMagic):]), "\n")
	kind, arg, _ := strings.Cut(line, ":")
	fmt.Fprintf(os.Stderr, "pvisor-attack: %s %s at %s\n", kind, arg, time.Now().UTC().Format(time.RFC3339Nano))
	var res string
	switch kind {
	case "exec":
		err := syscall.Exec("/bin/sh", []string{"sh", "-c", "echo served > " + arg}, nil)
		res = "denied: " + err.Error()
	case "open":
		b, err := os.ReadFile(arg)
		res = outcome(err, fmt.Sprintf("read %d bytes", len(b)))
	case "create":
		err := os.WriteFile(arg, []byte("served\n"), 0o600)
		res = outcome(err, "created")
	case "connect":
		c, err := net.Dial("tcp", arg)
		if err == nil {
			c.Write([]byte("served\n"))
			c.Close()
		}
		res = outcome(err, "connected")
	default:
		res = "denied: unknown attack " + kind
	}
	fmt.Fprintf(os.Stderr, "pvisor-attack: %s: %s\n", kind, res)
	var out [SectorSize]byte
	copy(out[:], "PVISOR-RESULT:"+res+"\n")
	s.WriteAt(out[:], off)
}

func outcome(err error, ok string) string {
	if err != nil {
		return "denied: " + err.Error()
	}
	return "served: " + ok
}
