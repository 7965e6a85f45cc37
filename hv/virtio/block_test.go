package virtio

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const testSectors = 64

// newImage writes a raw image whose sector s is filled with byte s+1 and
// returns its path.
func newImage(t testing.TB) string {
	t.Helper()
	img := make([]byte, testSectors*SectorSize)
	for s := range testSectors {
		for i := range SectorSize {
			img[s*SectorSize+i] = byte(s + 1)
		}
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func blkHeader(typ uint32, sector uint64) []byte {
	h := make([]byte, blockHeaderSize)
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint64(h[8:], sector)
	return h
}

func newBlockRig(t *testing.T, o BlockOptions, features uint64) (*rig, *Block, string) {
	t.Helper()
	path := newImage(t)
	b, err := OpenBlock(path, o)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, b, features, 16, Options{})
	t.Cleanup(func() { b.Close() })
	return r, b, path
}

func sector(s int) []byte { return bytes.Repeat([]byte{byte(s + 1)}, SectorSize) }

func TestBlockRequests(t *testing.T) {
	tests := []struct {
		name     string
		ro       bool
		out      [][]byte // after the header
		typ      uint32
		sector   uint64
		in       []uint32 // before the status byte
		status   byte
		wantIn   [][]byte
		used     uint32
		wantDisk map[int][]byte // sectors of the image afterwards
	}{
		{name: "read one sector", typ: blockReqIn, sector: 3, in: []uint32{512}, status: BlockStatusOK, wantIn: [][]byte{sector(3)}, used: 513},
		{name: "read across buffers", typ: blockReqIn, sector: 62, in: []uint32{100, 924}, status: BlockStatusOK,
			wantIn: [][]byte{sector(62)[:100], append(sector(62)[100:], sector(63)...)}, used: 1025},
		{name: "read the last sector", typ: blockReqIn, sector: testSectors - 1, in: []uint32{512}, status: BlockStatusOK, wantIn: [][]byte{sector(63)}, used: 513},
		{name: "read past the end", typ: blockReqIn, sector: testSectors - 1, in: []uint32{1024}, status: BlockStatusIOErr, used: 1},
		{name: "read at capacity", typ: blockReqIn, sector: testSectors, in: []uint32{512}, status: BlockStatusIOErr, used: 1},
		{name: "sector whose byte offset wraps", typ: blockReqIn, sector: 1 << 55, in: []uint32{512}, status: BlockStatusIOErr, used: 1},
		{name: "read of part of a sector", typ: blockReqIn, sector: 0, in: []uint32{100}, status: BlockStatusIOErr, used: 1},
		{name: "write", typ: blockReqOut, sector: 5, out: [][]byte{bytes.Repeat([]byte{0xab}, 512)}, status: BlockStatusOK, used: 1,
			wantDisk: map[int][]byte{4: sector(4), 5: bytes.Repeat([]byte{0xab}, 512), 6: sector(6)}},
		{name: "write across buffers", typ: blockReqOut, sector: 0, out: [][]byte{bytes.Repeat([]byte{1}, 12), bytes.Repeat([]byte{2}, 1012)}, status: BlockStatusOK, used: 1,
			wantDisk: map[int][]byte{0: append(bytes.Repeat([]byte{1}, 12), bytes.Repeat([]byte{2}, 500)...), 1: bytes.Repeat([]byte{2}, 512)}},
		{name: "write past the end", typ: blockReqOut, sector: testSectors - 1, out: [][]byte{make([]byte, 1024)}, status: BlockStatusIOErr, used: 1,
			wantDisk: map[int][]byte{testSectors - 1: sector(testSectors - 1)}},
		{name: "write to a read-only disk", ro: true, typ: blockReqOut, sector: 0, out: [][]byte{make([]byte, 512)}, status: BlockStatusIOErr, used: 1,
			wantDisk: map[int][]byte{0: sector(0)}},
		{name: "read from a read-only disk", ro: true, typ: blockReqIn, sector: 7, in: []uint32{512}, status: BlockStatusOK, wantIn: [][]byte{sector(7)}, used: 513},
		{name: "flush", typ: blockReqFlush, status: BlockStatusOK, used: 1},
		{name: "flush of a read-only disk", ro: true, typ: blockReqFlush, status: BlockStatusOK, used: 1},
		{name: "get id", typ: blockReqGetID, in: []uint32{20}, status: BlockStatusOK, wantIn: [][]byte{append([]byte("pvisor-disk0"), make([]byte, 8)...)}, used: 21},
		{name: "unsupported type", typ: 99, in: []uint32{512}, status: BlockStatusUnsupp, used: 1},
		{name: "discard (not offered)", typ: 11, out: [][]byte{make([]byte, 16)}, status: BlockStatusUnsupp, used: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, path := newBlockRig(t, BlockOptions{ReadOnly: tt.ro, ID: "pvisor-disk0"}, allRing|BlockFeatureFlush)
			out := append([][]byte{blkHeader(tt.typ, tt.sector)}, tt.out...)
			n, got := r.do(out, append(append([]uint32(nil), tt.in...), 1))
			if st := got[len(got)-1][0]; st != tt.status {
				t.Fatalf("status %d, want %d", st, tt.status)
			}
			if n != tt.used {
				t.Fatalf("used len %d, want %d", n, tt.used)
			}
			for i, w := range tt.wantIn {
				if !bytes.Equal(got[i], w) {
					t.Fatalf("buffer %d = %x..., want %x...", i, got[i][:min(16, len(got[i]))], w[:min(16, len(w))])
				}
			}
			img, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for s, w := range tt.wantDisk {
				if g := img[s*SectorSize : (s+1)*SectorSize]; !bytes.Equal(g, w) {
					t.Fatalf("image sector %d = %x..., want %x...", s, g[:16], w[:16])
				}
			}
		})
	}
}

// TestBlockDurability checks when writes reach the disk (fdatasync): with
// FLUSH negotiated (a write-back cache) only at a flush; without it
// (write-through) before each write completes.
func TestBlockDurability(t *testing.T) {
	tests := []struct {
		name      string
		features  uint64
		ro        bool
		typ       uint32
		wantSyncs uint64
	}{
		{"write-back: write", allRing | BlockFeatureFlush, false, blockReqOut, 0},
		{"write-back: flush", allRing | BlockFeatureFlush, false, blockReqFlush, 1},
		{"write-through: write", allRing, false, blockReqOut, 1},
		{"read-only: flush", allRing | BlockFeatureFlush, true, blockReqFlush, 0},
		{"read", allRing, false, blockReqIn, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, b, _ := newBlockRig(t, BlockOptions{ReadOnly: tt.ro}, tt.features)
			out := [][]byte{blkHeader(tt.typ, 1)}
			in := []uint32{1}
			switch tt.typ {
			case blockReqOut:
				out = append(out, make([]byte, 512))
			case blockReqIn:
				in = []uint32{512, 1}
			}
			_, got := r.do(out, in)
			if st := got[len(got)-1][0]; st != BlockStatusOK {
				t.Fatalf("status %d", st)
			}
			if b.Syncs() != tt.wantSyncs {
				t.Fatalf("%d fdatasync calls before completion, want %d", b.Syncs(), tt.wantSyncs)
			}
		})
	}
}

func TestBlockConfig(t *testing.T) {
	r, b, _ := newBlockRig(t, BlockOptions{}, allRing)
	var c [blockConfigSize]byte
	if !r.dev.ReadConfig(0, c[:]) {
		t.Fatal("config read refused")
	}
	if got := binary.LittleEndian.Uint64(c[0:]); got != testSectors || b.Capacity() != testSectors {
		t.Fatalf("capacity %d, want %d", got, testSectors)
	}
	if got := binary.LittleEndian.Uint32(c[12:]); got != blockQueueSize-2 {
		t.Fatalf("seg_max %d", got)
	}
	if got := binary.LittleEndian.Uint32(c[20:]); got != SectorSize {
		t.Fatalf("blk_size %d", got)
	}
}

func TestBlockMalformedRequests(t *testing.T) {
	tests := []struct {
		name string
		out  [][]byte
		in   []uint32
	}{
		{"short header", [][]byte{make([]byte, 15)}, []uint32{1}},
		{"no status byte", [][]byte{blkHeader(blockReqIn, 0)}, nil},
		{"nothing", nil, []uint32{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, _ := newBlockRig(t, BlockOptions{}, allRing)
			r.drv.add(tt.out, tt.in)
			r.dev.Notify(0)
			if err := r.broken(); err != errBlockLayout {
				t.Fatalf("error %v, want %v", err, errBlockLayout)
			}
		})
	}
}

func TestBlockImageChecks(t *testing.T) {
	if _, err := OpenBlock(t.TempDir(), BlockOptions{}); err == nil {
		t.Fatalf("a directory was accepted as an image")
	}
	if _, err := OpenBlock(newImage(t), BlockOptions{ID: "123456789012345678901"}); err == nil {
		t.Fatalf("a 21-byte serial was accepted")
	}
	b, err := OpenBlock(newImage(t), BlockOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Features()&BlockFeatureRO == 0 {
		t.Fatalf("read-only disk does not offer VIRTIO_BLK_F_RO")
	}
}

// TestBlockThrottled runs block requests under an ops limit on a fake
// clock: the device goroutine waits exactly as long as the buckets say.
func TestBlockThrottled(t *testing.T) {
	clk := &fakeClock{now: testEpoch}
	path := newImage(t)
	b, err := OpenBlock(path, BlockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := newFakeMem(rigRAM)
	sig := newSignals()
	dev := NewDevice(b, m, sig, Options{Limits: Limits{OpsPerSec: 10, OpsBurst: 2, BytesPerSec: 1 << 20}, Clock: clk})
	var slept []int64
	dev.sleep = func(d time.Duration, stop <-chan struct{}) bool {
		slept = append(slept, int64(d))
		clk.advance(d)
		return true
	}
	r := &rig{t: t, mem: m, dev: dev, sig: sig}
	r.bringUp(allRing, 16)
	defer dev.SetStatus(0)
	for i := range 5 {
		r.do([][]byte{blkHeader(blockReqIn, uint64(i))}, []uint32{512, 1})
	}
	// Two from the burst, then one per 100 ms.
	want := []int64{100e6, 100e6, 100e6}
	if len(slept) != len(want) || slept[0] != want[0] || slept[1] != want[1] || slept[2] != want[2] {
		t.Fatalf("waits %v ns, want %v", slept, want)
	}
	if got := dev.Stats().Throttled; got != 3 {
		t.Fatalf("Throttled %d, want 3", got)
	}
}
