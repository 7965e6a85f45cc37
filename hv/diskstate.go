package hv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/pvisor/pvisor/hv/overlay"
	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/hv/virtio"
)

// Disks in snapshots (docs/snapshot.md, "Disk sections"): after the
// memory section, one disk section per configured disk, in order. A disk
// with a copy-on-write overlay is captured: its section holds the
// overlay's delta (the clusters that differ from the base), and a restore
// writes them into a new overlay over the same base. A writable disk
// without one is not captured (the image goes on changing after the
// snapshot): its section says so and a restore warns. A read-only disk
// needs nothing.

// diskKind is what a disk section says of its disk.
type diskKind uint8

const (
	diskReadOnly diskKind = 0 // read-only: nothing to capture
	diskLive     diskKind = 1 // writable, no overlay: not captured
	diskOverlay  diskKind = 2 // an overlay: the delta follows
)

func (k diskKind) String() string {
	switch k {
	case diskReadOnly:
		return "read-only"
	case diskLive:
		return "writable without an overlay"
	case diskOverlay:
		return "over an overlay"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// diskPrefixLen is the disk section's fixed part: the disk's index (4
// bytes), its kind (1), zero (3).
const diskPrefixLen = 8

func kindOf(d Disk) diskKind {
	switch {
	case d.ReadOnly:
		return diskReadOnly
	case d.Overlay != "":
		return diskOverlay
	}
	return diskLive
}

// openOverlayDisk opens d's image read-only as the base of the overlay
// d.Overlay (created if it does not exist or is empty).
func openOverlayDisk(d Disk, o virtio.BlockOptions) (*virtio.Block, error) {
	f, err := os.Open(d.Path)
	if err != nil {
		return nil, fmt.Errorf("virtio-blk: %w", err)
	}
	base, err := virtio.NewFileStore(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	s, err := overlay.Open(d.Overlay, base, overlay.Options{ReadOnly: d.ReadOnly})
	if err != nil {
		return nil, err
	}
	b, err := virtio.NewBlockStore(s, o)
	if err != nil {
		s.Close()
		return nil, err
	}
	return b, nil
}

// blockDevice is the virtio device whose backend is b, or nil (a disk
// ejected meanwhile).
func (vm *VM) blockDevice(b *virtio.Block) *virtio.Device {
	for _, d := range vm.mmio {
		if d.block == b {
			return d.t.Device()
		}
	}
	for i := range vm.pv.slots {
		if s := vm.pv.slots[i].Load(); s != nil && s.closer == io.Closer(b) {
			return s.t.Device()
		}
	}
	return nil
}

// writeDisks writes the disk sections. Precondition: the VM is paused
// (its devices quiesced).
func (vm *VM) writeDisks(sw *snapshot.Writer) error {
	for i, b := range vm.disks {
		d := vm.cfg.Disks[i]
		var prefix [diskPrefixLen]byte
		binary.LittleEndian.PutUint32(prefix[0:], uint32(i))
		prefix[4] = byte(kindOf(d))
		if kindOf(d) != diskOverlay {
			if err := sw.WriteSection(snapshot.TagDisk, prefix[:]); err != nil {
				return err
			}
			continue
		}
		dev := vm.blockDevice(b)
		if dev == nil {
			return fmt.Errorf("hv: disk %d (%s) is no longer attached", i, d.Path)
		}
		if !dev.Quiesced() {
			return fmt.Errorf("hv: disk %d (%s) is not quiesced: a request may be in flight", i, d.Path)
		}
		s, ok := b.Store().(*overlay.Store)
		if !ok {
			return fmt.Errorf("hv: disk %d (%s): its backend is not an overlay", i, d.Path)
		}
		pr, pw := io.Pipe()
		go func() {
			_, err := pw.Write(prefix[:])
			if err == nil {
				err = s.WriteDelta(pw)
			}
			pw.CloseWithError(err)
		}()
		err := sw.WriteSectionFrom(snapshot.TagDisk, diskPrefixLen+s.DeltaLen(), pr)
		pr.CloseWithError(errors.New("hv: the snapshot stopped reading the disk"))
		if err != nil {
			return fmt.Errorf("hv: disk %d (%s): %w", i, d.Path, err)
		}
	}
	return nil
}

// readDisks reads the disk sections into the restored VM's disks: an
// overlay disk's delta goes into its new overlay; a disk that was not
// captured gets a warning. Any mismatch between the snapshot's disks and
// the configured ones is refused.
func (vm *VM) readDisks(sr *snapshot.Reader) error {
	for i, b := range vm.disks {
		d := vm.cfg.Disks[i]
		sec, err := nextSection(sr, snapshot.TagDisk)
		if err != nil {
			return err
		}
		var prefix [diskPrefixLen]byte
		if sec.Len < diskPrefixLen {
			return fmt.Errorf("disk section of %d bytes, shorter than its %d-byte prefix", sec.Len, diskPrefixLen)
		}
		if _, err := io.ReadFull(sec, prefix[:]); err != nil {
			return err
		}
		idx, kind := binary.LittleEndian.Uint32(prefix[0:]), diskKind(prefix[4])
		if idx != uint32(i) || prefix[5]|prefix[6]|prefix[7] != 0 || kind > diskOverlay {
			return fmt.Errorf("disk section %d: it says disk %d, kind %v: want disk %d and zero reserved bytes", i, idx, kind, i)
		}
		want := kindOf(d)
		switch {
		case kind == diskOverlay && want != diskOverlay:
			return fmt.Errorf("disk %d (%s) was over an overlay in the snapshot: give --disk %s,overlay=NEWFILE to restore it", i, d.Path, d.Path)
		case (kind == diskReadOnly) != (want == diskReadOnly):
			return fmt.Errorf("disk %d (%s) was %v in the snapshot, the restore gives it %v: give it as the snapshotted VM had it", i, d.Path, kind, want)
		case kind != diskOverlay && sec.Len != diskPrefixLen:
			return fmt.Errorf("disk section %d: %d bytes after the prefix of a disk %v", i, sec.Len-diskPrefixLen, kind)
		case kind == diskLive:
			vm.restoreWarnings = append(vm.restoreWarnings, fmt.Sprintf(
				"disk %d (%s) was not in the snapshot (it had no overlay): the guest gets the image as it is now, which may differ from what it wrote before the snapshot", i, d.Path))
		case kind == diskOverlay:
			s, ok := b.Store().(*overlay.Store)
			if !ok {
				return fmt.Errorf("hv: disk %d (%s): its backend is not an overlay", i, d.Path)
			}
			if err := s.ReadDelta(sec, sec.Len-diskPrefixLen); err != nil {
				return fmt.Errorf("disk %d (%s, overlay %s): %w", i, d.Path, d.Overlay, err)
			}
		}
	}
	return nil
}

// RestoreWarnings are what a restore could not bring back as it was (a
// disk the snapshot did not capture), for the operator.
func (vm *VM) RestoreWarnings() []string { return vm.restoreWarnings }

// overlayRename is an overlay a restore fills under a temporary name,
// to replace the file at final once the restore has succeeded.
type overlayRename struct {
	disk  int
	final string
}

// claimOverlays checks, before a restore opens them, that the restore's
// writable overlay files do not exist or are empty: a restore fills a new
// overlay and refuses to clobber one, unless overwrite. An overlay to
// overwrite is filled under a temporary name beside it, which
// commitOverlays renames over it once the restore has succeeded, so that
// a failed restore leaves it as it was. It returns the disks to open (with
// those temporary names). A read-only overlay is opened as it is.
func claimOverlays(disks []Disk, overwrite bool) ([]Disk, []overlayRename, error) {
	disks = append([]Disk(nil), disks...)
	var renames []overlayRename
	fail := func(err error) ([]Disk, []overlayRename, error) {
		for _, r := range renames {
			os.Remove(disks[r.disk].Overlay)
		}
		return nil, nil, err
	}
	for i, d := range disks {
		if d.Overlay == "" || d.ReadOnly {
			continue
		}
		for _, e := range disks[:i] {
			if e.Overlay == d.Overlay {
				return fail(fmt.Errorf("--disk %s: overlay %s is given twice: give each disk its own", d.Path, d.Overlay))
			}
		}
		fi, err := os.Stat(d.Overlay)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			return fail(fmt.Errorf("--disk %s: overlay: %w", d.Path, err))
		case !fi.Mode().IsRegular():
			return fail(fmt.Errorf("--disk %s: overlay %s is not a regular file", d.Path, d.Overlay))
		case fi.Size() == 0:
			continue
		case !overwrite:
			return fail(fmt.Errorf("--disk %s: overlay %s is not empty (%d bytes): a restore writes a new overlay; give a new path, or --overwrite-overlay to replace it", d.Path, d.Overlay, fi.Size()))
		}
		if inUse(d.Overlay) {
			return fail(fmt.Errorf("--disk %s: overlay %s is in use by a running VM: stop it first, or give a new path", d.Path, d.Overlay))
		}
		f, err := os.CreateTemp(filepath.Dir(d.Overlay), "."+filepath.Base(d.Overlay)+".restore-*")
		if err != nil {
			return fail(fmt.Errorf("--disk %s: overlay: %w", d.Path, err))
		}
		f.Close()
		renames = append(renames, overlayRename{disk: i, final: d.Overlay})
		disks[i].Overlay = f.Name()
	}
	return disks, renames, nil
}

// commitOverlays renames the overlays a restore filled under temporary
// names over the files they replace.
func (vm *VM) commitOverlays(renames []overlayRename) error {
	for _, r := range renames {
		d := &vm.cfg.Disks[r.disk]
		if err := os.Rename(d.Overlay, r.final); err != nil {
			return fmt.Errorf("--disk %s: replacing overlay %s: %w", d.Path, r.final, err)
		}
		d.Overlay = r.final
		if dir, err := os.Open(filepath.Dir(r.final)); err == nil {
			dir.Sync() // the rename, durable
			dir.Close()
		}
	}
	return nil
}

// removeOverlays removes the writable overlay files of a restore that
// failed (claimOverlays made them new or empty), once no store has them:
// each only if no other process holds it (a concurrent VM given the same
// path).
func removeOverlays(disks []Disk) {
	for _, d := range disks {
		if d.Overlay != "" && !d.ReadOnly && !inUse(d.Overlay) {
			os.Remove(d.Overlay)
		}
	}
}

// inUse reports whether another open file holds the overlay at path's
// lock (a store has it open); a file that cannot be opened is not.
func inUse(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil
}
