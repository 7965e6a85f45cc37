package hv

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
)

// echoGuest polls console_read until input arrives, writes it back with
// console_write and powers off with code 7.
var echoGuest = []byte{
	0x49, 0xc7, 0xc3, 0x00, 0xa0, 0x00, 0x00, 0xbf, 0x00, 0x00, 0x30, 0x00,
	0xbe, 0x10, 0x00, 0x00, 0x00, 0xb8, 0x04, 0x00, 0x00, 0x00, 0x41, 0xff,
	0xd3, 0x48, 0x85, 0xc0, 0x74, 0xe9, 0x48, 0x89, 0xc6, 0xbf, 0x00, 0x00,
	0x30, 0x00, 0xb8, 0x03, 0x00, 0x00, 0x00, 0x41, 0xff, 0xd3, 0xb8, 0x0f,
	0x00, 0x00, 0x00, 0x31, 0xff, 0xbe, 0x07, 0x00, 0x00, 0x00, 0x41, 0xff,
	0xd3, 0xf4,
}

func TestConsoleInput(t *testing.T) {
	var out bytes.Buffer
	vm, err := New(Config{Kernel: elfImage(append(declarePrefix(), echoGuest...)), MemBytes: 8 << 20, Mode: cpu.ModePV,
		Budget: mm.NewBudget(1 << 30), Console: &out, ConsoleIn: strings.NewReader("xyz")})
	if err != nil {
		t.Fatal(err)
	}
	st := vm.Run()
	if st.Code != 7 || out.String() != "xyz" {
		t.Errorf("status %+v, console %q", st, out.String())
	}
}

// blockedWriter never returns from Write, like a pipe nobody reads.
type blockedWriter struct{ entered chan struct{} }

func (w blockedWriter) Write(b []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	select {}
}

// floodGuest writes 4 KiB to the console in a loop, forever.
var floodGuest = []byte{
	0x49, 0xc7, 0xc3, 0x00, 0xa0, 0x00, 0x00, // mov r11, 0xa000 (hypercall page)
	0xbf, 0x00, 0x00, 0x10, 0x00, // mov edi, 0x100000
	0xbe, 0x00, 0x10, 0x00, 0x00, // mov esi, 4096
	0xb8, 0x03, 0x00, 0x00, 0x00, // mov eax, console_write
	0x41, 0xff, 0xd3, // call r11
	0xeb, 0xec, // jmp to mov edi
}

// TestConsoleWriterBlocked: a console writer that never returns blocks
// neither the vCPU nor the VM's stop, from the guest (shutdown) or from
// outside (Stop); the output it did not take is counted.
func TestConsoleWriterBlocked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		guest []byte
		stop  bool // stopped from outside
		code  int
	}{
		{"guest shutdown", helloGuest, false, 42},
		{"stopped from outside", floodGuest, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := blockedWriter{entered: make(chan struct{}, 1)}
			vm, err := New(Config{Kernel: elfImage(tc.guest), MemBytes: 8 << 20, Mode: cpu.ModePV,
				Budget: mm.NewBudget(1 << 30), Console: w})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan ExitStatus, 1)
			go func() { done <- vm.Run() }()
			if tc.stop {
				<-w.entered
				// The guest keeps writing while the writer is stuck.
				for deadline := time.Now().Add(10 * time.Second); vm.out.lost() < consoleOutMax && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				vm.Stop(3, "end of test")
			}
			select {
			case st := <-done:
				if st.Code != tc.code || st.ConsoleDropped == 0 {
					t.Errorf("status %+v: want code %d and dropped output", st, tc.code)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the VM did not stop: its console writer blocked it")
			}
		})
	}
}
