package snapshot

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash"
	"io"
)

// ReaderOptions say how to open a snapshot.
type ReaderOptions struct {
	// Key opens a MAC or Encrypted snapshot. When it is set, a digest-only
	// snapshot is refused (ErrUnauthenticated).
	Key *Key
	// MaxArgon2MemoryKiB lowers the argon2id memory a header may ask for;
	// zero means MaxArgon2MemoryKiB.
	MaxArgon2MemoryKiB uint32
}

// Reader reads a snapshot as a stream of sections. It authenticates each
// chunk before returning any of its bytes and holds one chunk at a time.
type Reader struct {
	src   io.Reader
	hdr   Header
	run   hash.Hash // digest and MAC forms
	aead  cipher.AEAD
	aad   []byte
	chunk []byte // authenticated plaintext of the current chunk
	raw   []byte // the chunk as read (payload, or ciphertext and tag)
	pos   int    // bytes of chunk consumed
	final bool   // the current chunk is the last
	index uint64 // index of the next chunk to read
	tag   []byte
	err   error // sticky
	cur   *Section
	done  bool
}

// NewReader reads and authenticates the header of the snapshot in src.
// The version is checked first; an error names both versions.
func NewReader(src io.Reader, opt ReaderOptions) (*Reader, error) {
	maxMem := opt.MaxArgon2MemoryKiB
	if maxMem == 0 || maxMem > MaxArgon2MemoryKiB {
		maxMem = MaxArgon2MemoryKiB
	}
	var pre [headerFixedLen]byte
	if _, err := io.ReadFull(src, pre[:]); err != nil {
		return nil, readErr(err, "header")
	}
	flags, metaLen, err := parsePrefix(pre[:])
	if err != nil {
		return nil, err
	}
	hb := make([]byte, headerFixedLen+metaLen+tagLen)
	copy(hb, pre[:])
	if _, err := io.ReadFull(src, hb[headerFixedLen:]); err != nil {
		return nil, readErr(err, "header")
	}
	tag := hb[headerFixedLen+metaLen:]
	hb = hb[:headerFixedLen+metaLen]
	r := &Reader{src: src}
	h := &r.hdr
	if err := parseMetadata(h, flags, hb[headerFixedLen:], maxMem); err != nil {
		return nil, err
	}
	var ks *snapKeys
	switch {
	case h.Protection == Digest && opt.Key != nil:
		return nil, ErrUnauthenticated
	case h.Protection != Digest && opt.Key == nil:
		return nil, ErrKeyRequired
	case h.Protection != Digest:
		if ks, err = checkKey(opt.Key, h); err != nil {
			return nil, err
		}
	}
	var want []byte
	switch h.Protection {
	case Digest:
		r.run = sha256.New()
	case MAC:
		r.run = hmac.New(sha256.New, ks.mac)
	case Encrypted:
		m := hmac.New(sha256.New, ks.mac)
		m.Write(hb)
		want = m.Sum(nil)
		block, err := aes.NewCipher(ks.gcm)
		if err != nil {
			return nil, err
		}
		if r.aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
		r.aad = chunkAADPrefix(h, hb)
	}
	if r.run != nil {
		r.run.Write(hb)
		want = r.run.Sum(nil)
		r.run.Write(tag)
	}
	if !hmac.Equal(want, tag) {
		return nil, corrupt("header failed authentication")
	}
	r.tag = make([]byte, 0, tagLen)
	return r, nil
}

// readErr turns a short read into ErrCorrupt (truncation) and passes other
// I/O errors through.
func readErr(err error, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return corrupt("truncated in the %s", what)
	}
	return err
}

// Header returns the authenticated header.
func (r *Reader) Header() Header { return r.hdr }

// nextChunk reads, authenticates and decrypts chunk r.index.
func (r *Reader) nextChunk() error {
	if r.final {
		return corrupt("the sections run past the final chunk")
	}
	var frame [chunkFrameLen]byte
	if _, err := io.ReadFull(r.src, frame[:]); err != nil {
		return readErr(err, fmt.Sprintf("frame of chunk %d (no final chunk)", r.index))
	}
	n := binary.LittleEndian.Uint32(frame[0:4])
	flags := frame[4]
	cs := r.hdr.ChunkSize
	switch {
	case flags&^chunkFinal != 0:
		return corrupt("chunk %d has unknown flags %#x", r.index, flags)
	case n > cs:
		return corrupt("chunk %d of %d bytes exceeds the chunk size %d", r.index, n, cs)
	case flags&chunkFinal == 0 && n != cs:
		return corrupt("chunk %d is short (%d of %d bytes) but not final", r.index, n, cs)
	case n == 0:
		return corrupt("chunk %d is empty", r.index)
	}
	if r.raw == nil {
		extra := tagLen
		if r.aead != nil {
			extra = gcmTagLen
		}
		r.raw = make([]byte, 0, int(cs)+extra)
	}
	if r.aead != nil {
		r.raw = r.raw[:n+gcmTagLen]
		if _, err := io.ReadFull(r.src, r.raw); err != nil {
			return readErr(err, fmt.Sprintf("chunk %d", r.index))
		}
		var nonce [12]byte
		chunkNonce(&nonce, r.index, flags)
		if r.chunk == nil {
			r.chunk = make([]byte, 0, cs)
		}
		out, err := r.aead.Open(r.chunk[:0], nonce[:], r.raw, chunkAAD(r.aad, r.index, flags))
		if err != nil {
			return corrupt("chunk %d failed authentication", r.index)
		}
		r.chunk = out
	} else {
		r.raw = r.raw[:n+tagLen]
		if _, err := io.ReadFull(r.src, r.raw); err != nil {
			return readErr(err, fmt.Sprintf("chunk %d", r.index))
		}
		r.run.Write(frame[:])
		r.run.Write(r.raw[:n])
		r.tag = r.run.Sum(r.tag[:0])
		if !hmac.Equal(r.tag, r.raw[n:]) {
			return corrupt("chunk %d failed its %v check", r.index, r.hdr.Protection)
		}
		r.run.Write(r.raw[n:])
		r.chunk = r.raw[:n]
	}
	r.pos = 0
	r.final = flags&chunkFinal != 0
	r.index++
	return nil
}

// read fills p from the authenticated plaintext stream.
func (r *Reader) read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	total := 0
	for len(p) > 0 {
		if r.pos == len(r.chunk) {
			if err := r.nextChunk(); err != nil {
				r.err = err
				return total, err
			}
		}
		n := copy(p, r.chunk[r.pos:])
		r.pos += n
		p = p[n:]
		total += n
	}
	return total, nil
}

// Next returns the next section, skipping what was left unread of the
// previous one. It returns io.EOF after the end marker, once the final
// chunk has been authenticated and no byte follows it; any other error
// means the snapshot must not be used, whatever was read before.
func (r *Reader) Next() (*Section, error) {
	if r.done {
		return nil, io.EOF
	}
	if r.err != nil {
		return nil, r.err
	}
	if s := r.cur; s != nil {
		r.cur = nil
		for s.remaining > 0 {
			n := min(s.remaining, uint64(len(r.chunk)-r.pos))
			if n == 0 {
				if err := r.nextChunk(); err != nil {
					r.err = err
					return nil, err
				}
				continue
			}
			r.pos += int(n)
			s.remaining -= n
		}
	}
	var b [sectionHeaderLen]byte
	if _, err := r.read(b[:]); err != nil {
		return nil, err
	}
	t := Tag(binary.LittleEndian.Uint32(b[0:]))
	n := binary.LittleEndian.Uint64(b[4:])
	if t == TagEnd {
		if n != 0 {
			r.err = corrupt("end marker with length %d", n)
			return nil, r.err
		}
		if !r.final || r.pos != len(r.chunk) {
			r.err = corrupt("data after the end marker")
			return nil, r.err
		}
		var one [1]byte
		if k, err := io.ReadFull(r.src, one[:]); k != 0 || err != io.EOF {
			if k == 0 && err != nil && err != io.EOF {
				r.err = err
			} else {
				r.err = corrupt("bytes after the final chunk")
			}
			return nil, r.err
		}
		r.done = true
		return nil, io.EOF
	}
	s := &Section{Tag: t, Len: n, r: r, remaining: n}
	r.cur = s
	return s, nil
}

// Section is one section of a snapshot. It reads its payload as an
// io.Reader; every byte it returns has been authenticated.
type Section struct {
	Tag       Tag
	Len       uint64 // payload length in bytes
	r         *Reader
	remaining uint64
}

// Read implements io.Reader over the section's payload.
func (s *Section) Read(p []byte) (int, error) {
	if s.r.cur != s {
		return 0, errors.New("snapshot: section read after Next")
	}
	if s.remaining == 0 {
		return 0, io.EOF
	}
	if uint64(len(p)) > s.remaining {
		p = p[:s.remaining]
	}
	n, err := s.r.read(p)
	s.remaining -= uint64(n)
	return n, err
}

// DecodeGob decodes the section's payload, written by WriteGob, into v,
// and refuses trailing bytes.
func (s *Section) DecodeGob(v any) error {
	if err := gob.NewDecoder(s).Decode(v); err != nil {
		if s.r.err != nil {
			return s.r.err
		}
		return corrupt("section %v: %v", s.Tag, err)
	}
	if s.remaining != 0 {
		return corrupt("section %v: %d bytes after its gob value", s.Tag, s.remaining)
	}
	return nil
}

// ReadByte implements io.ByteReader, so that encoding/gob reads the
// section without a read-ahead buffer and trailing bytes can be detected.
func (s *Section) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}
