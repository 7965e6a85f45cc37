package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxConfigFile bounds a --config file: a config with thousands of VMs
// is far smaller.
const maxConfigFile = 1 << 20

// checkFile refuses what pvisor must not read as a file the operator
// named: anything but a regular file (a device such as /dev/zero, a FIFO,
// a directory), or a file larger than limit bytes.
func checkFile(what, path string, fi os.FileInfo, limit uint64) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %s is a %s, not a regular file: pass the path of a file", what, path, fileType(fi.Mode()))
	}
	if uint64(fi.Size()) > limit {
		return fmt.Errorf("%s %s is %d MiB, more than the %d MiB it may be: give more --mem or a smaller file", what, path, fi.Size()>>20, limit>>20)
	}
	return nil
}

func fileType(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "FIFO"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}

// statFile checks the file at path (checkFile) without opening it.
func statFile(what, path string, limit uint64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s not found at %s (%v): build it (make guest, make testguest) or pass its path", what, path, err)
	}
	return checkFile(what, path, fi, limit)
}

// readFile reads a file the operator named, of at most limit bytes. It
// opens without blocking (a FIFO put there since it was checked does not
// hang the open), checks what it opened, and reads no more than limit
// bytes even from a file that grows meanwhile.
func readFile(what, path string, limit uint64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s not readable at %s: %v", what, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", what, path, err)
	}
	if err := checkFile(what, path, fi, limit); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()))
	if _, err := buf.ReadFrom(io.LimitReader(f, int64(limit)+1)); err != nil {
		return nil, fmt.Errorf("reading %s %s: %v", what, path, err)
	}
	if uint64(buf.Len()) > limit {
		return nil, fmt.Errorf("%s %s grew past %d MiB while it was read: pass a file nothing writes to", what, path, limit>>20)
	}
	return buf.Bytes(), nil
}
