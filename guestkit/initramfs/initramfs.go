// Package initramfs writes Linux initramfs images: cpio archives in the "newc"
// format (magic 070701), gzip-compressed, as the kernel unpacks them into its
// rootfs at boot (init/initramfs.c).
//
// Each entry is a 110-byte ASCII header of thirteen 8-digit hexadecimal fields
// (inode, mode, uid, gid, nlink, mtime, file size, device major/minor, rdev
// major/minor, name size including the NUL, checksum), then the NUL-terminated
// name padded to a multiple of 4 bytes, then the data padded to a multiple of 4.
// The archive ends with an entry named "TRAILER!!!".
//
// The output is deterministic: every entry is owned by root, has the Writer's
// ModTime (the Unix epoch unless set) and gets inode numbers in order of
// addition, so equal inputs give byte-identical archives.
package initramfs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Unix file-type bits of the cpio mode field.
const (
	modeDir  = 0o040000
	modeChar = 0o020000
	modeReg  = 0o100000
	modeLink = 0o120000
)

const trailer = "TRAILER!!!"

// Writer writes a gzip-compressed newc cpio archive. Names are paths inside the
// archive; a leading "/" is dropped ("/bin/sh" is stored as "bin/sh"). Missing
// parent directories are added automatically with mode 0755, since the kernel
// does not create them. Adding the same name twice is an error. Errors are
// sticky: after the first one every call fails, and Close reports it.
type Writer struct {
	// ModTime is the modification time recorded for every entry.
	ModTime time.Time

	gz     *gzip.Writer
	w      io.Writer // gz, or the destination for an uncompressed archive
	ino    uint32
	names  map[string]bool
	err    error
	closed bool
}

// NewWriter returns a Writer that writes a gzip-compressed archive to w.
// Close must be called to finish the archive; it does not close w.
func NewWriter(w io.Writer) *Writer {
	gz, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
	return &Writer{gz: gz, w: gz, names: map[string]bool{}}
}

// NewUncompressedWriter returns a Writer that writes a plain cpio archive to w.
func NewUncompressedWriter(w io.Writer) *Writer {
	return &Writer{w: w, names: map[string]bool{}}
}

// AddDir adds a directory. Only the permission, setuid, setgid and sticky bits
// of mode are used.
func (w *Writer) AddDir(name string, mode fs.FileMode) error {
	return w.add(name, modeDir|unixPerm(mode), 2, nil, 0, 0)
}

// AddFile adds a regular file holding data.
func (w *Writer) AddFile(name string, mode fs.FileMode, data []byte) error {
	return w.add(name, modeReg|unixPerm(mode), 1, data, 0, 0)
}

// AddSymlink adds a symbolic link to target (stored as the entry's data).
func (w *Writer) AddSymlink(name, target string) error {
	if target == "" {
		return w.fail(fmt.Errorf("initramfs: symlink %q: empty target", name))
	}
	return w.add(name, modeLink|0o777, 1, []byte(target), 0, 0)
}

// AddCharDev adds a character device node with the given major and minor
// numbers, e.g. /dev/console (5, 1) or /dev/null (1, 3).
func (w *Writer) AddCharDev(name string, mode fs.FileMode, major, minor uint32) error {
	return w.add(name, modeChar|unixPerm(mode), 1, nil, major, minor)
}

// Close writes the trailer and flushes the compressor.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil {
		w.err = w.writeEntry(trailer, 0, 1, nil, 0, 0, 0)
	}
	if w.gz != nil {
		if err := w.gz.Close(); err != nil && w.err == nil {
			w.err = err
		}
	}
	return w.err
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// clean turns an archive path into its stored form.
func clean(name string) (string, error) {
	n := strings.TrimLeft(name, "/")
	if n == "" || n == "." {
		return "", fmt.Errorf("initramfs: invalid name %q", name)
	}
	if path.Clean(n) != n {
		return "", fmt.Errorf("initramfs: name %q is not clean", name)
	}
	for _, el := range strings.Split(n, "/") {
		if el == ".." {
			return "", fmt.Errorf("initramfs: name %q leaves the archive", name)
		}
	}
	if n == trailer || strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("initramfs: invalid name %q", name)
	}
	return n, nil
}

func (w *Writer) add(name string, mode uint32, nlink uint32, data []byte, rmajor, rminor uint32) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("initramfs: write after Close")
	}
	n, err := clean(name)
	if err != nil {
		return w.fail(err)
	}
	if w.names[n] {
		return w.fail(fmt.Errorf("initramfs: duplicate entry %q", n))
	}
	// Parents first: the kernel creates entries in archive order.
	if dir := path.Dir(n); dir != "." && !w.names[dir] {
		if err := w.add(dir, modeDir|0o755, 2, nil, 0, 0); err != nil {
			return err
		}
	}
	w.names[n] = true
	w.ino++
	if err := w.writeEntry(n, mode, nlink, data, w.ino, rmajor, rminor); err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *Writer) writeEntry(name string, mode, nlink uint32, data []byte, ino, rmajor, rminor uint32) error {
	if uint64(len(data)) > 0xffffffff {
		return fmt.Errorf("initramfs: %q: file too large for newc", name)
	}
	var mtime uint32
	if !w.ModTime.IsZero() && w.ModTime.Unix() > 0 {
		mtime = uint32(w.ModTime.Unix())
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	buf := make([]byte, 0, pad4(len(hdr)+len(name)+1))
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = append(buf, make([]byte, pad4(len(buf))-len(buf))...)
	if _, err := w.w.Write(buf); err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	if _, err := w.w.Write(data); err != nil {
		return err
	}
	if p := pad4(len(data)) - len(data); p > 0 {
		if _, err := w.w.Write(make([]byte, p)); err != nil {
			return err
		}
	}
	return nil
}

func pad4(n int) int { return (n + 3) &^ 3 }

// unixPerm converts the permission and special bits of an fs.FileMode to their
// Unix values.
func unixPerm(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}
