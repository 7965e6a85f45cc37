package main

import (
	"io"

	"golang.org/x/sys/unix"
)

// ctrlRightBracket (Ctrl-]) typed on the terminal stops the VM, as in
// telnet and virsh console.
const ctrlRightBracket = 0x1d

// rawTerminal puts fd in raw mode if it is a terminal and returns a
// function that restores it; ok is false for a non-terminal.
func rawTerminal(fd int) (restore func(), ok bool) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}, false
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return func() {}, false
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, true
}

// escapeReader passes input through until Ctrl-], then calls quit and
// reports end of input.
type escapeReader struct {
	r    io.Reader
	quit func()
	done bool
}

func (e *escapeReader) Read(p []byte) (int, error) {
	if e.done {
		return 0, io.EOF
	}
	n, err := e.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == ctrlRightBracket {
			e.done = true
			e.quit()
			return i, nil
		}
	}
	return n, err
}
