package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/attest"
	"github.com/pvisor/pvisor/hypercall"
)

// Measured boot with a signed log (issue 15, part 3): the daemon keeps a
// measurement log per VM (hv/attest) and signs it, over a verifier's
// nonce, with the host's Ed25519 key: `pvisor attest VM --nonce N`.
// `pvisor verify` checks a quote and compares it with an
// expected-measurements file (pvisor measure).

func init() {
	register(command{"attest", "a signed quote of a VM's measurement log: attest VM --nonce HEX (or --public-key)", clientAttest})
	register(command{"verify", "check a quote: verify --quote FILE --nonce HEX --public-key HEX [--expect FILE]", runVerify})
}

// selfDigest is the detail and SHA-256 of the running pvisor binary,
// read once; a binary it cannot read is measured as such (zero digest,
// the reason in the detail), so a verifier sees it.
var selfDigest = sync.OnceValues(func() (string, [32]byte) {
	exe, err := os.Executable()
	if err != nil {
		return "unreadable: " + err.Error(), [32]byte{}
	}
	f, err := os.Open(exe)
	if err != nil {
		return exe + " unreadable: " + err.Error(), [32]byte{}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return exe + " unreadable: " + err.Error(), [32]byte{}
	}
	var d [32]byte
	h.Sum(d[:0])
	return exe, d
})

// verityBlock is the block of a read-only disk's hash tree.
const verityBlock = 4096

// diskDigest measures a disk: for a read-only one the root of a SHA-256
// tree over its 4 KiB blocks (dm-verity's idea: the whole content, and a
// reader could check blocks against it), for a writable one the SHA-256
// of its first 4 KiB (the header of an encrypted or overlaid image, the
// partition table or superblock of a raw one) and its size.
func diskDigest(d hv.Disk) (string, [32]byte, error) {
	f, err := os.Open(d.Path)
	if err != nil {
		return "", [32]byte{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", [32]byte{}, err
	}
	if !d.ReadOnly || d.Overlay != "" {
		b := make([]byte, verityBlock)
		n, err := io.ReadFull(f, b)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return "", [32]byte{}, err
		}
		return fmt.Sprintf("%s rw size=%d header-sha256", d.Path, fi.Size()), sha256.Sum256(b[:n]), nil
	}
	var level [][32]byte
	b := make([]byte, verityBlock)
	for {
		n, err := io.ReadFull(f, b)
		if n > 0 {
			clear(b[n:])
			level = append(level, sha256.Sum256(b))
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return "", [32]byte{}, err
		}
	}
	if len(level) == 0 {
		level = [][32]byte{sha256.Sum256(nil)}
	}
	for len(level) > 1 {
		var up [][32]byte
		for i := 0; i < len(level); i += 2 {
			pair := level[i][:]
			if i+1 < len(level) {
				pair = append(append([]byte(nil), level[i][:]...), level[i+1][:]...)
			}
			up = append(up, sha256.Sum256(pair))
		}
		level = up
	}
	return fmt.Sprintf("%s ro size=%d verity-root-sha256/4096", d.Path, fi.Size()), level[0], nil
}

// buildMeasurementLog measures a VM as it boots: pvisor itself, kernel,
// initramfs, command line (the digests hv.Measure gives the guest), each
// disk, the ABI version and the mode. Patch levels are added as the VM
// reaches them (measuredLevel).
func buildMeasurementLog(spec vmSpec, kernel, initrd []byte) (*attest.Log, error) {
	var l attest.Log
	m := hv.Measure(kernel, initrd, spec.cmdline)
	exe, self := selfDigest()
	initrdDetail := spec.initrd
	if initrd == nil {
		initrdDetail = "none"
	}
	steps := []struct {
		kind, detail string
		d            [32]byte
	}{
		{"pvisor", exe, self},
		{"kernel", spec.kernel, m.Kernel},
		{"initrd", initrdDetail, m.Initrd},
		{"cmdline", spec.cmdline, m.Cmdline},
	}
	for _, s := range steps {
		if err := l.Extend(s.kind, s.detail, s.d); err != nil {
			return nil, err
		}
	}
	for i, d := range spec.disks {
		detail, dg, err := diskDigest(d)
		if err != nil {
			return nil, fmt.Errorf("measuring disk %d: %v", i, err)
		}
		if err := l.Extend("disk", detail, dg); err != nil {
			return nil, err
		}
	}
	abi := fmt.Sprintf("%d", hypercall.Version)
	if err := l.ExtendData("abi", abi, []byte(abi)); err != nil {
		return nil, err
	}
	mode := spec.mode.String()
	if err := l.ExtendData("mode", mode, []byte(mode)); err != nil {
		return nil, err
	}
	return &l, nil
}

// measuredLevel extends ent's log with the VM's patch level when it has
// changed since the last extend. Precondition: ent.mu held.
func (ent *vmEntry) measuredLevel(level uint64) error {
	if ent.mlog == nil || level == ent.mlogLevel && ent.mlogLevelSet {
		return nil
	}
	s := fmt.Sprintf("%d", level)
	if err := ent.mlog.ExtendData("patch-level", s, []byte(s)); err != nil {
		return err
	}
	ent.mlogLevel, ent.mlogLevelSet = level, true
	return nil
}

// attestRequest is POST /v1/vms/{name}/attest.
type attestRequest struct {
	Nonce string `json:"nonce"` // hex, 16-64 bytes, chosen by the verifier
}

// quote signs ent's measurement log over nonce.
func (d *daemon) quote(ent *vmEntry, vm vmBackend, r *http.Request) (any, error) {
	var req attestRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if _, err := attest.ParseNonce(req.Nonce); err != nil {
		return nil, errorf(400, "%v", err)
	}
	key, err := attest.HostKey(d.store.Dir())
	if err != nil {
		return nil, errorf(500, "the host key: %v", err)
	}
	ent.mu.Lock()
	defer ent.mu.Unlock()
	if ent.mlog == nil {
		return nil, errorf(409, "VM %q has no measurement log (it was restored from a snapshot: its kernel digest is in the snapshot's header)", ent.rec.Definition.Name)
	}
	if err := ent.measuredLevel(vm.Lineage().PatchLevel); err != nil {
		return nil, errorf(500, "%v", err)
	}
	q, err := attest.Sign(key, ent.rec.Definition.Name, ent.mlog, req.Nonce, time.Now())
	if err != nil {
		return nil, errorf(500, "%v", err)
	}
	return q, nil
}

// clientAttest is `pvisor attest VM --nonce N [-o FILE]` and
// `pvisor attest --public-key`.
func clientAttest(args []string, stdout, stderr io.Writer) int {
	f := newClientFlags("attest", stderr)
	nonce := f.fs.String("nonce", "", "the verifier's nonce: 16 to 64 bytes in hex")
	out := f.fs.String("o", "", "write the quote to this new file instead of standard output")
	pub := f.fs.Bool("public-key", false, "print the host's public key (hex Ed25519; the state directory's host key, made if new) and stop")
	return clientRun(f, args, -1, "VM --nonce HEX [-o FILE] | --public-key", stderr, func(c *apiClient, a []string) error {
		if *pub {
			key, err := attest.HostKey(*f.stateDir)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, hex.EncodeToString(key.Public().(ed25519.PublicKey)))
			return nil
		}
		if len(a) != 1 {
			return errors.New("usage: pvisor attest VM --nonce HEX [-o FILE], or pvisor attest --public-key")
		}
		var q json.RawMessage
		if err := c.do("POST", vmPath(a[0], "/attest"), attestRequest{Nonce: *nonce}, &q); err != nil {
			return err
		}
		q = append(q, '\n')
		if *out != "" {
			return writeNewFile(*out, func(f *os.File) error { _, err := f.Write(q); return err })
		}
		_, err := stdout.Write(q)
		return err
	})
}

// runVerify is `pvisor verify`.
func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quoteFile := fs.String("quote", "", "the quote (pvisor attest -o FILE)")
	nonce := fs.String("nonce", "", "the nonce the quote must answer")
	pubHex := fs.String("public-key", "", "the host's public key (pvisor attest --public-key), hex")
	expect := fs.String("expect", "", "an expected-measurements file (pvisor measure) the quote's kernel, initramfs and command line must match")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *quoteFile == "" || *nonce == "" || *pubHex == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: pvisor verify --quote FILE --nonce HEX --public-key HEX [--expect FILE]")
		return 2
	}
	err := verifyQuote(*quoteFile, *nonce, *pubHex, *expect, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor verify: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "quote verified")
	return 0
}

func verifyQuote(quoteFile, nonce, pubHex, expect string, stdout io.Writer) error {
	pub, err := attest.ParsePublicKey(pubHex)
	if err != nil {
		return err
	}
	b, err := readFile("quote", quoteFile, 4<<20)
	if err != nil {
		return err
	}
	var q attest.Quote
	if err := json.Unmarshal(b, &q); err != nil {
		return fmt.Errorf("%s: not a quote: %v", quoteFile, err)
	}
	if err := attest.Verify(&q, pub, nonce); err != nil {
		return err
	}
	for _, e := range q.Events {
		fmt.Fprintf(stdout, "%-12s %s  %s\n", e.Kind, e.Digest, e.Detail)
	}
	if expect == "" {
		return nil
	}
	exp, err := loadExpected(expect)
	if err != nil {
		return err
	}
	var m hypercall.MeasuredBoot
	seen := map[string]bool{}
	for _, e := range q.Events {
		var dst *[32]byte
		switch e.Kind {
		case "kernel":
			dst = &m.Kernel
		case "initrd":
			dst = &m.Initrd
		case "cmdline":
			dst = &m.Cmdline
		default:
			continue
		}
		if seen[e.Kind] {
			return fmt.Errorf("the quote measures %s twice", e.Kind)
		}
		seen[e.Kind] = true
		d, _ := hex.DecodeString(e.Digest) // Verify checked it
		copy(dst[:], d)
	}
	for _, k := range []string{"kernel", "initrd", "cmdline"} {
		if !seen[k] {
			return fmt.Errorf("the quote has no %s measurement", k)
		}
	}
	if err := exp.check(m); err != nil {
		return errors.New("the measurements differ from " + expect + ": " + strings.ReplaceAll(err.Error(), " measures ", " was measured as "))
	}
	return nil
}
