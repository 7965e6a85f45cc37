package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ctlRestoreWait bounds how long `pvisor ctl restore` waits for the new
// pvisor's control socket.
const ctlRestoreWait = 5 * time.Minute

// ctlRestore is `pvisor ctl --control SOCK restore SNAP [flags]`: it
// restores the snapshot into a new pvisor process, detached from the
// terminal in a session of its own, listening on SOCK, with its console
// and messages in logPath; it returns once that process answers on SOCK
// (printing the restored VM), or reports why it ended (a refused restore:
// the rollback guard's message, a wrong key, a damaged file). flags are
// `pvisor run --restore`'s (--name, --disk, --allow-rollback, --paused,
// --key-file...).
func ctlRestore(sock, logPath, snap string, flags []string, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "pvisor ctl: restore: "+format+"\n", a...)
		return 1
	}
	for _, f := range flags {
		switch strings.TrimLeft(strings.SplitN(f, "=", 2)[0], "-") {
		case "restore", "control":
			return fail("%s is the restore's own: give the snapshot and --control once", f)
		}
	}
	abs := func(p string) (string, error) { return filepath.Abs(p) }
	var err error
	if sock, err = abs(sock); err != nil {
		return fail("%v", err)
	}
	if snap, err = abs(snap); err != nil {
		return fail("%v", err)
	}
	if logPath == "" {
		logPath = sock + ".log"
	}
	if logPath, err = abs(logPath); err != nil {
		return fail("%v", err)
	}
	if _, err := os.Lstat(sock); err == nil {
		if _, err := ctlCall(sock, &ctlRequest{Op: "list"}, 2*time.Second); err == nil {
			return fail("a pvisor already listens on %s: give another control socket", sock)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fail("finding the pvisor binary: %v", err)
	}
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fail("%v", err)
	}
	defer log.Close()
	start, _ := log.Seek(0, io.SeekEnd)
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fail("%v", err)
	}
	defer null.Close()
	cmd := exec.Command(self, append([]string{"run", "--restore", snap, "--control", sock}, flags...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fail("%v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(ctlRestoreWait)
	for {
		select {
		case err := <-exited:
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			return fail("the restored pvisor ended (status %d) before it answered on %s:\n%s", code, sock, logSince(logPath, start))
		case <-deadline:
			return fail("pid %d did not answer on %s within %v; it is still running: see %s", cmd.Process.Pid, sock, ctlRestoreWait, logPath)
		case <-time.After(50 * time.Millisecond):
		}
		rep, err := ctlCall(sock, &ctlRequest{Op: "list"}, 2*time.Second)
		if err != nil || len(rep.VMs) == 0 {
			continue
		}
		v := rep.VMs[0]
		fmt.Fprintf(stdout, "restored %s (pid %d, %s) from %s: control %s, console %s, generation %s, patch level %d of %d",
			v.Name, cmd.Process.Pid, v.State, snap, sock, logPath, v.Generation, v.PatchLevel, v.LineageHighest)
		if v.RolledBack {
			fmt.Fprint(stdout, ", ROLLED BACK")
		}
		fmt.Fprintln(stdout)
		// The new pvisor outlives this command: it is in its own session.
		cmd.Process.Release()
		return 0
	}
}

// logSince is what the log has after offset start (at most 4 KiB of its
// end).
func logSince(path string, start int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < start {
		return ""
	}
	b = b[start:]
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return strings.TrimSpace(string(b))
}
