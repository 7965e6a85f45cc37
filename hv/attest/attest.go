package attest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Event is one measurement: what was measured (Kind), which one and how
// (Detail) and its SHA-256 (Digest, hex).
type Event struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	Digest string `json:"digest"`
}

// Limits on what a log and a quote may hold (a verifier's input is hostile).
const (
	MaxEvents   = 4096
	MaxField    = 4096
	MinNonce    = 16 // bytes
	MaxNonce    = 64
	QuoteFormat = 1
)

// Log is a VM's measurement log and the register its events extend.
// Log is not safe for concurrent use; its owner serializes Extend.
type Log struct {
	events []Event
	reg    [32]byte
}

// eventDigest is the value an event extends the register with.
func eventDigest(e Event) ([32]byte, error) {
	d, err := hex.DecodeString(e.Digest)
	if err != nil || len(d) != 32 {
		return [32]byte{}, fmt.Errorf("event %q: digest %q is not 64 hex digits", e.Kind, e.Digest)
	}
	if e.Kind == "" || len(e.Kind) > MaxField || len(e.Detail) > MaxField || bytes.IndexByte([]byte(e.Kind), 0) >= 0 || bytes.IndexByte([]byte(e.Detail), 0) >= 0 {
		return [32]byte{}, fmt.Errorf("event %q: kind or detail empty, over %d bytes or holding a NUL", e.Kind, MaxField)
	}
	h := sha256.New()
	h.Write([]byte(e.Kind))
	h.Write([]byte{0})
	h.Write([]byte(e.Detail))
	h.Write([]byte{0})
	h.Write(d)
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}

// Extend appends an event whose measured bytes have SHA-256 digest.
func (l *Log) Extend(kind, detail string, digest [32]byte) error {
	return l.extend(Event{Kind: kind, Detail: detail, Digest: hex.EncodeToString(digest[:])})
}

// ExtendData measures data and appends it.
func (l *Log) ExtendData(kind, detail string, data []byte) error {
	return l.Extend(kind, detail, sha256.Sum256(data))
}

func (l *Log) extend(e Event) error {
	if len(l.events) >= MaxEvents {
		return fmt.Errorf("measurement log full (%d events)", MaxEvents)
	}
	ed, err := eventDigest(e)
	if err != nil {
		return err
	}
	l.reg = sha256.Sum256(append(l.reg[:], ed[:]...))
	l.events = append(l.events, e)
	return nil
}

// Events returns a copy of the log's events.
func (l *Log) Events() []Event { return append([]Event(nil), l.events...) }

// Register returns the register after every event.
func (l *Log) Register() [32]byte { return l.reg }

// Replay computes the register a list of events produces.
func Replay(events []Event) ([32]byte, error) {
	if len(events) > MaxEvents {
		return [32]byte{}, fmt.Errorf("%d events, over the limit of %d", len(events), MaxEvents)
	}
	var l Log
	for _, e := range events {
		if err := l.extend(e); err != nil {
			return [32]byte{}, err
		}
	}
	return l.reg, nil
}

// Quote is a signed statement of a VM's measurements.
type Quote struct {
	Format    int       `json:"format"`
	VM        string    `json:"vm"`
	Nonce     string    `json:"nonce"`    // hex, as the verifier sent it
	Time      time.Time `json:"time"`     // when it was signed (UTC)
	Register  string    `json:"register"` // hex
	Events    []Event   `json:"events"`
	PublicKey string    `json:"public_key"` // hex Ed25519
	Signature string    `json:"signature"`  // hex Ed25519
}

// ParseNonce checks a verifier's nonce: hex, MinNonce to MaxNonce bytes.
func ParseNonce(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) < MinNonce || len(b) > MaxNonce {
		return nil, fmt.Errorf("nonce %q: want %d to %d bytes in hex (e.g. from `openssl rand -hex 32`)", s, MinNonce, MaxNonce)
	}
	return b, nil
}

// quoteMessage is what the signature covers: a domain-separation prefix,
// then length-prefixed fields, so no two quotes share a message.
func quoteMessage(q *Quote) ([]byte, error) {
	nonce, err := ParseNonce(q.Nonce)
	if err != nil {
		return nil, err
	}
	reg, err := hex.DecodeString(q.Register)
	if err != nil || len(reg) != 32 {
		return nil, fmt.Errorf("register %q is not 64 hex digits", q.Register)
	}
	ev, err := json.Marshal(q.Events)
	if err != nil {
		return nil, err
	}
	logDigest := sha256.Sum256(ev)
	var m bytes.Buffer
	m.WriteString("pvisor-quote-v1\x00")
	field := func(b []byte) {
		binary.Write(&m, binary.BigEndian, uint32(len(b)))
		m.Write(b)
	}
	field([]byte(fmt.Sprint(q.Format)))
	field([]byte(q.VM))
	field(nonce)
	field([]byte(q.Time.UTC().Format(time.RFC3339Nano)))
	field(reg)
	field(logDigest[:])
	return m.Bytes(), nil
}

// Sign makes the quote of log for VM name over nonce with key.
func Sign(key ed25519.PrivateKey, name string, log *Log, nonce string, now time.Time) (*Quote, error) {
	if _, err := ParseNonce(nonce); err != nil {
		return nil, err
	}
	reg := log.Register()
	q := &Quote{Format: QuoteFormat, VM: name, Nonce: nonce, Time: now.UTC(), Register: hex.EncodeToString(reg[:]),
		Events: log.Events(), PublicKey: hex.EncodeToString(key.Public().(ed25519.PublicKey))}
	msg, err := quoteMessage(q)
	if err != nil {
		return nil, err
	}
	q.Signature = hex.EncodeToString(ed25519.Sign(key, msg))
	return q, nil
}

// Verify checks q: its signature under pub, its nonce against the one
// the verifier sent, and its log against its register.
func Verify(q *Quote, pub ed25519.PublicKey, nonce string) error {
	if q.Format != QuoteFormat {
		return fmt.Errorf("quote format %d: this pvisor reads format %d", q.Format, QuoteFormat)
	}
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("public key: not an Ed25519 key")
	}
	if q.PublicKey != hex.EncodeToString(pub) {
		return fmt.Errorf("the quote is signed by key %s, not the expected %s", short(q.PublicKey), short(hex.EncodeToString(pub)))
	}
	msg, err := quoteMessage(q)
	if err != nil {
		return err
	}
	sig, err := hex.DecodeString(q.Signature)
	if err != nil || !ed25519.Verify(pub, msg, sig) {
		return errors.New("the signature does not verify: the quote was changed or signed by another key")
	}
	if q.Nonce != nonce {
		return fmt.Errorf("the quote answers nonce %s, not %s: a replayed or stale quote", short(q.Nonce), short(nonce))
	}
	reg, err := Replay(q.Events)
	if err != nil {
		return err
	}
	if hex.EncodeToString(reg[:]) != q.Register {
		return errors.New("the log does not replay to the quote's register")
	}
	return nil
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// keyFile is the host key's file in a state directory.
const keyFile = "keys/attest.key"

// HostKey loads the host's Ed25519 key from stateDir, creating it (mode
// 0600) the first time. A key file readable by group or others, or of the
// wrong size, is refused.
func HostKey(stateDir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(stateDir, keyFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("host key %s: mode %v; it must be a file only its owner reads (chmod 600)", path, fi.Mode())
	}
	b, err := io.ReadAll(io.LimitReader(f, 2*ed25519.SeedSize))
	if err != nil {
		return nil, err
	}
	if len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("host key %s: %d bytes, want a %d-byte Ed25519 seed", path, len(b), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(b), nil
}

func createKey(path string) (ed25519.PrivateKey, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return HostKey(filepath.Dir(filepath.Dir(path))) // made meanwhile
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(seed); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePublicKey reads a hex Ed25519 public key (as `pvisor attest
// --public-key` prints it).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(string(bytes.TrimSpace([]byte(s))))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("public key: want 64 hex digits (pvisor attest --public-key prints it)")
	}
	return ed25519.PublicKey(b), nil
}
