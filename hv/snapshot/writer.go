package snapshot

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Options say how a Writer protects a snapshot.
type Options struct {
	// Protection is Digest (the default, with Key nil), MAC or Encrypted
	// (both need Key).
	Protection Protection
	// Key is the master key for MAC and Encrypted.
	Key *Key
	// Argon2 is the cost for a passphrase Key; zero means DefaultArgon2.
	Argon2 Argon2Params
	// ChunkSize is the plaintext bytes per chunk; zero means
	// DefaultChunkSize. It must lie in MinChunkSize..MaxChunkSize.
	ChunkSize int
	// Rand supplies the snapshot ID, the key seed and the argon2id salt;
	// nil means crypto/rand.Reader. Tests inject a deterministic source.
	Rand io.Reader
}

func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// Writer writes one snapshot as a stream: NewWriter writes the header,
// each Write* call appends one section, Close writes the end marker and the
// final chunk. Only one chunk of plaintext is buffered. Close does not close
// the destination. After a write error, or a streamed section whose source
// fell short, the Writer is unusable and the partial output must be
// discarded; an argument refused before anything was written (a bad tag, a
// memory buffer of the wrong size) leaves it usable.
type Writer struct {
	dst    io.Writer
	hdr    Header
	buf    []byte // plaintext of the chunk being filled; cap = chunk size
	out    []byte // sealed chunk (encrypted form)
	index  uint64
	run    hash.Hash // digest and MAC forms: hash of every byte written
	aead   cipher.AEAD
	aad    []byte // snapshot ID and header hash; chunkAAD appends index and flags
	frame  [chunkFrameLen]byte
	tag    []byte
	err    error
	closed bool
}

// NewWriter validates md, writes the header to dst and returns a Writer.
func NewWriter(dst io.Writer, md Metadata, opt Options) (*Writer, error) {
	if md.Created.IsZero() {
		md.Created = time.Now()
	}
	md.Created = md.Created.UTC()
	if err := validateMetadata(&md); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	cs := opt.ChunkSize
	if cs == 0 {
		cs = DefaultChunkSize
	}
	if cs < MinChunkSize || cs > MaxChunkSize {
		return nil, fmt.Errorf("snapshot: chunk size %d outside %d..%d", cs, MinChunkSize, MaxChunkSize)
	}
	switch opt.Protection {
	case Digest:
		if opt.Key != nil {
			return nil, errors.New("snapshot: a key was given for a digest-only snapshot: choose MAC or Encrypted")
		}
	case MAC, Encrypted:
		if opt.Key == nil {
			return nil, fmt.Errorf("snapshot: %v needs a key", opt.Protection)
		}
	default:
		return nil, fmt.Errorf("snapshot: unknown protection %v", opt.Protection)
	}
	rnd := randOrDefault(opt.Rand)
	w := &Writer{dst: dst, buf: make([]byte, 0, cs)}
	h := &w.hdr
	h.Metadata = md
	h.Version = Version
	h.Protection = opt.Protection
	h.ChunkSize = uint32(cs)
	if _, err := io.ReadFull(rnd, h.SnapshotID[:]); err != nil {
		return nil, fmt.Errorf("snapshot: random source: %w", err)
	}
	var ks *snapKeys
	if opt.Key != nil {
		h.KDF = opt.Key.kdf()
		if h.KDF == KDFArgon2id {
			h.Argon2 = opt.Argon2
			if h.Argon2 == (Argon2Params{}) {
				h.Argon2 = DefaultArgon2
			}
			if err := validateArgon2(h.Argon2, MaxArgon2MemoryKiB); err != nil {
				return nil, fmt.Errorf("snapshot: %w", err)
			}
			if _, err := io.ReadFull(rnd, h.Salt[:]); err != nil {
				return nil, fmt.Errorf("snapshot: random source: %w", err)
			}
		}
		if _, err := io.ReadFull(rnd, h.keySeed[:]); err != nil {
			return nil, fmt.Errorf("snapshot: random source: %w", err)
		}
		master, err := opt.Key.master(h)
		if err != nil {
			return nil, err
		}
		if ks, err = deriveKeys(master, h.keySeed[:]); err != nil {
			return nil, err
		}
		h.keyCheck = ks.check
	}
	hb := h.marshal()
	switch h.Protection {
	case Digest:
		w.run = sha256.New()
	case MAC:
		w.run = hmac.New(sha256.New, ks.mac)
	case Encrypted:
		block, err := aes.NewCipher(ks.gcm)
		if err != nil {
			return nil, err
		}
		if w.aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
		w.out = make([]byte, 0, cs+gcmTagLen)
		w.aad = chunkAADPrefix(h, hb)
	}
	// The header's tag: the running digest or MAC over the header, or in
	// the encrypted form an HMAC under the per-snapshot MAC key.
	var tag []byte
	if w.run != nil {
		w.run.Write(hb)
		tag = w.run.Sum(nil)
		w.run.Write(tag)
	} else {
		m := hmac.New(sha256.New, ks.mac)
		m.Write(hb)
		tag = m.Sum(nil)
	}
	if _, err := dst.Write(hb); err != nil {
		return nil, err
	}
	if _, err := dst.Write(tag); err != nil {
		return nil, err
	}
	w.tag = make([]byte, 0, tagLen)
	return w, nil
}

// chunkAADPrefix is the associated data every encrypted chunk shares: the
// snapshot's random ID and the SHA-256 of the header bytes, followed (per
// chunk) by the chunk index and flags.
func chunkAADPrefix(h *Header, hb []byte) []byte {
	sum := sha256.Sum256(hb)
	aad := make([]byte, 0, 16+32+9)
	aad = append(aad, h.SnapshotID[:]...)
	aad = append(aad, sum[:]...)
	return aad
}

// chunkNonce is the GCM nonce of chunk index with flags: the index
// big-endian, the flags, three zero bytes. Keys are per snapshot (HKDF over
// a random seed), so a nonce never repeats under one key.
func chunkNonce(n *[12]byte, index uint64, flags byte) {
	binary.BigEndian.PutUint64(n[0:8], index)
	n[8] = flags
	n[9], n[10], n[11] = 0, 0, 0
}

func chunkAAD(prefix []byte, index uint64, flags byte) []byte {
	aad := binary.BigEndian.AppendUint64(prefix, index)
	return append(aad, flags)
}

// Header returns the header as written (with the snapshot ID it chose).
func (w *Writer) Header() Header { return w.hdr }

func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("snapshot: write after Close")
	}
	for len(p) > 0 {
		if len(w.buf) == cap(w.buf) {
			// Full, and more is coming: this chunk is not the last.
			if err := w.emit(w.buf, 0); err != nil {
				w.err = err
				return err
			}
			w.buf = w.buf[:0]
		}
		// Whole chunks with more after them go out from p without a copy.
		for len(w.buf) == 0 && len(p) > cap(w.buf) {
			if err := w.emit(p[:cap(w.buf)], 0); err != nil {
				w.err = err
				return err
			}
			p = p[cap(w.buf):]
		}
		n := min(cap(w.buf)-len(w.buf), len(p))
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
	}
	return nil
}

// emit writes plaintext (the buffer, or a whole chunk of the caller's) as
// chunk w.index.
func (w *Writer) emit(plain []byte, flags byte) error {
	binary.LittleEndian.PutUint32(w.frame[0:4], uint32(len(plain)))
	w.frame[4] = flags
	if _, err := w.dst.Write(w.frame[:]); err != nil {
		return err
	}
	if w.aead != nil {
		var nonce [12]byte
		chunkNonce(&nonce, w.index, flags)
		w.out = w.aead.Seal(w.out[:0], nonce[:], plain, chunkAAD(w.aad, w.index, flags))
		if _, err := w.dst.Write(w.out); err != nil {
			return err
		}
	} else {
		w.run.Write(w.frame[:])
		w.run.Write(plain)
		w.tag = w.run.Sum(w.tag[:0])
		w.run.Write(w.tag)
		if _, err := w.dst.Write(plain); err != nil {
			return err
		}
		if _, err := w.dst.Write(w.tag); err != nil {
			return err
		}
	}
	w.index++
	return nil
}

func (w *Writer) sectionHeader(t Tag, n uint64) error {
	if t == TagEnd {
		return errors.New("snapshot: tag 0 is the end marker")
	}
	var b [sectionHeaderLen]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(t))
	binary.LittleEndian.PutUint64(b[4:], n)
	return w.write(b[:])
}

// WriteSection appends a section of tag t holding payload.
func (w *Writer) WriteSection(t Tag, payload []byte) error {
	if err := w.sectionHeader(t, uint64(len(payload))); err != nil {
		return err
	}
	return w.write(payload)
}

// WriteSectionFrom appends a section of tag t whose payload is exactly n
// bytes read from r, streamed (a disk overlay need not fit in memory).
func (w *Writer) WriteSectionFrom(t Tag, n int64, r io.Reader) error {
	if n < 0 {
		return fmt.Errorf("snapshot: negative section length %d", n)
	}
	if err := w.sectionHeader(t, uint64(n)); err != nil {
		return err
	}
	got, err := io.Copy(writerFunc(w.write), io.LimitReader(r, n))
	if err == nil && got != n {
		err = fmt.Errorf("snapshot: section %v: source gave %d of %d bytes", t, got, n)
	}
	if err != nil && w.err == nil {
		w.err = err // the section header promised n bytes
	}
	return err
}

type writerFunc func([]byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteGob appends a section of tag t holding v encoded by a fresh
// encoding/gob Encoder (so the section is self-describing). v follows the
// state conventions: no maps, so the encoding is deterministic.
func (w *Writer) WriteGob(t Tag, v any) error {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return fmt.Errorf("snapshot: section %v: %w", t, err)
	}
	return w.WriteSection(t, b.Bytes())
}

// Close writes the end marker, flushes the final chunk and its tag. It
// does not close the destination.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	var end [sectionHeaderLen]byte // TagEnd, length 0
	if err := w.write(end[:]); err != nil {
		return err
	}
	w.closed = true
	if err := w.emit(w.buf, chunkFinal); err != nil {
		w.err = err
		return err
	}
	return nil
}
