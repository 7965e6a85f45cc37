package initramfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// entry is one parsed newc record.
type entry struct {
	name         string
	mode         uint32
	nlink        uint32
	mtime        uint32
	data         string
	rmaj, rmin   uint32
	ino          uint32
	uid, gid     uint32
	devmaj, devm uint32
}

// parse reads an uncompressed newc archive, checking alignment and the trailer.
func parse(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("header at %d is not 4-byte aligned", off)
		}
		if off+110 > len(b) {
			t.Fatalf("truncated header at %d", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		f := make([]uint32, 13)
		for i := range f {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			f[i] = uint32(v)
		}
		namesize, size := int(f[11]), int(f[6])
		name := string(b[off+110 : off+110+namesize])
		if !strings.HasSuffix(name, "\x00") {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		name = name[:len(name)-1]
		off = pad4(off + 110 + namesize)
		data := string(b[off : off+size])
		off = pad4(off + size)
		if name == trailer {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, entry{name: name, ino: f[0], mode: f[1], uid: f[2], gid: f[3], nlink: f[4],
			mtime: f[5], data: data, devmaj: f[7], devm: f[8], rmaj: f[9], rmin: f[10]})
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// sample builds the archive used by the tests.
func sample(t *testing.T, w *Writer) {
	t.Helper()
	steps := []error{
		w.AddDir("/bin", 0o755),
		w.AddFile("/bin/hello", 0o755, []byte("#!/bin/sh\necho hello\n")),
		w.AddFile("etc/motd", 0o644, []byte("x")), // parent "etc" added automatically
		w.AddFile("/empty", 0o600, nil),
		w.AddDir("/tmp", 0o777|fs.ModeSticky),
		w.AddSymlink("/bin/sh", "/bin/hello"),
		w.AddSymlink("/lnk", "etc/motd"),
		w.AddDir("/dev", 0o755),
		w.AddCharDev("/dev/console", 0o600, 5, 1),
		w.AddCharDev("/dev/null", 0o666, 1, 3),
		w.AddCharDev("/dev/big", 0o644, 259, 70000),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func buildSample(t *testing.T) (gz, raw []byte) {
	var buf bytes.Buffer
	sample(t, NewWriter(&buf))
	return buf.Bytes(), gunzip(t, buf.Bytes())
}

func TestFormat(t *testing.T) {
	_, raw := buildSample(t)
	got := parse(t, raw)
	type short struct {
		name  string
		mode  uint32
		nlink uint32
		data  string
		rdev  [2]uint32
	}
	var s []short
	for i, e := range got {
		if e.ino != uint32(i+1) {
			t.Errorf("%s: inode %d, want %d", e.name, e.ino, i+1)
		}
		if e.uid != 0 || e.gid != 0 || e.mtime != 0 || e.devmaj != 0 || e.devm != 0 {
			t.Errorf("%s: unexpected owner/time/dev fields %+v", e.name, e)
		}
		s = append(s, short{e.name, e.mode, e.nlink, e.data, [2]uint32{e.rmaj, e.rmin}})
	}
	want := []short{
		{"bin", 0o40755, 2, "", [2]uint32{}},
		{"bin/hello", 0o100755, 1, "#!/bin/sh\necho hello\n", [2]uint32{}},
		{"etc", 0o40755, 2, "", [2]uint32{}},
		{"etc/motd", 0o100644, 1, "x", [2]uint32{}},
		{"empty", 0o100600, 1, "", [2]uint32{}},
		{"tmp", 0o41777, 2, "", [2]uint32{}},
		{"bin/sh", 0o120777, 1, "/bin/hello", [2]uint32{}},
		{"lnk", 0o120777, 1, "etc/motd", [2]uint32{}},
		{"dev", 0o40755, 2, "", [2]uint32{}},
		{"dev/console", 0o20600, 1, "", [2]uint32{5, 1}},
		{"dev/null", 0o20666, 1, "", [2]uint32{1, 3}},
		{"dev/big", 0o20644, 1, "", [2]uint32{259, 70000}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("entries:\n got %+v\nwant %+v", s, want)
	}
}

func TestDeterministic(t *testing.T) {
	a, _ := buildSample(t)
	b, _ := buildSample(t)
	if !bytes.Equal(a, b) {
		t.Error("two archives of the same entries differ")
	}
}

func TestModTime(t *testing.T) {
	var buf bytes.Buffer
	w := NewUncompressedWriter(&buf)
	w.ModTime = time.Unix(1700000000, 0)
	if err := w.AddFile("f", 0o644, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	e := parse(t, buf.Bytes())
	if len(e) != 1 || e[0].mtime != 1700000000 || e[0].data != "abc" {
		t.Errorf("got %+v", e)
	}
}

func TestErrors(t *testing.T) {
	for _, name := range []string{"", "/", ".", "a/../b", "../x", "a//b", "a/", "TRAILER!!!"} {
		w := NewUncompressedWriter(io.Discard)
		if err := w.AddFile(name, 0o644, nil); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	w := NewUncompressedWriter(io.Discard)
	if err := w.AddFile("a", 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile("/a", 0o644, nil); err == nil {
		t.Error("duplicate accepted")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after an error returned nil")
	}
	w = NewUncompressedWriter(io.Discard)
	if err := w.AddSymlink("l", ""); err == nil {
		t.Error("empty symlink target accepted")
	}
	w = NewUncompressedWriter(io.Discard)
	w.Close()
	if err := w.AddDir("d", 0o755); err == nil {
		t.Error("write after Close accepted")
	}
}

func needCpio(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("cpio not installed (apt-get install cpio)")
	}
	return p
}

// TestSystemCpioList checks that GNU cpio reads the archive and lists every entry.
func TestSystemCpioList(t *testing.T) {
	cpio := needCpio(t)
	_, raw := buildSample(t)
	cmd := exec.Command(cpio, "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	want := "bin\nbin/hello\netc\netc/motd\nempty\ntmp\nbin/sh\nlnk\ndev\ndev/console\ndev/null\ndev/big\n"
	if string(out) != want {
		t.Errorf("cpio -t listed:\n%s\nwant:\n%s", out, want)
	}
}

// TestSystemCpioExtract extracts the archive with GNU cpio and compares what
// lands on disk: contents, modes, symlink targets and (as root) device nodes.
func TestSystemCpioExtract(t *testing.T) {
	cpio := needCpio(t)
	_, raw := buildSample(t)
	root := os.Geteuid() == 0
	if !root {
		// Without root, cpio cannot create device nodes: leave them out.
		var buf bytes.Buffer
		w := NewUncompressedWriter(&buf)
		for _, e := range parse(t, raw) {
			var err error
			switch e.mode &^ 0o7777 {
			case modeDir:
				err = w.AddDir(e.name, fs.FileMode(e.mode&0o777)|stickyOf(e.mode))
			case modeReg:
				err = w.AddFile(e.name, fs.FileMode(e.mode&0o777), []byte(e.data))
			case modeLink:
				err = w.AddSymlink(e.name, e.data)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		raw = buf.Bytes()
	}
	dir := t.TempDir()
	cmd := exec.Command(cpio, "-i", "--quiet", "--make-directories", "--no-absolute-filenames", "--preserve-modification-time")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}

	checkFile := func(name, data string, perm fs.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			return
		}
		if string(b) != data {
			t.Errorf("%s: content %q, want %q", name, b, data)
		}
		st, _ := os.Lstat(p)
		if !st.Mode().IsRegular() || st.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want regular %v", name, st.Mode(), perm)
		}
	}
	checkFile("bin/hello", "#!/bin/sh\necho hello\n", 0o755)
	checkFile("etc/motd", "x", 0o644)
	checkFile("empty", "", 0o600)

	for name, want := range map[string]fs.FileMode{"bin": 0o755, "etc": 0o755, "dev": 0o755} {
		st, err := os.Lstat(filepath.Join(dir, name))
		if err != nil || !st.IsDir() || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want directory %v", name, st, err, want)
		}
	}
	if st, err := os.Lstat(filepath.Join(dir, "tmp")); err != nil || st.Mode()&fs.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("tmp: %v %v, want sticky 0777 directory", st, err)
	}
	for name, target := range map[string]string{"bin/sh": "/bin/hello", "lnk": "etc/motd"} {
		got, err := os.Readlink(filepath.Join(dir, name))
		if err != nil || got != target {
			t.Errorf("%s: readlink %q %v, want %q", name, got, err, target)
		}
	}
	if !root {
		t.Log("not root: device nodes not checked")
		return
	}
	for name, want := range map[string][3]uint32{"dev/console": {0o600, 5, 1}, "dev/null": {0o666, 1, 3}, "dev/big": {0o644, 259, 70000}} {
		st, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode()&fs.ModeCharDevice == 0 || uint32(st.Mode().Perm()) != want[0] {
			t.Errorf("%s: mode %v, want char device %o", name, st.Mode(), want[0])
		}
		if maj, mnr := major(sys.Rdev), minor(sys.Rdev); maj != want[1] || mnr != want[2] {
			t.Errorf("%s: device %d,%d, want %d,%d", name, maj, mnr, want[1], want[2])
		}
	}
}

func stickyOf(mode uint32) fs.FileMode {
	if mode&0o1000 != 0 {
		return fs.ModeSticky
	}
	return 0
}

// major and minor split a Linux dev_t (glibc encoding).
func major(dev uint64) uint32 { return uint32((dev>>8)&0xfff) | uint32((dev>>32)&^0xfff) }
func minor(dev uint64) uint32 { return uint32(dev&0xff) | uint32((dev>>12)&^0xff) }
