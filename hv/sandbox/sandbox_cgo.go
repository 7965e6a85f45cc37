//go:build !linux || cgo

package sandbox

import (
	"errors"
	"runtime"
)

// Apply cannot confine this build: Landlock and capabilities must change
// on every thread, which needs Linux and a build without cgo
// (CGO_ENABLED=0, as the Makefile builds).
func Apply(c Config) (Status, error) {
	if runtime.GOOS != "linux" {
		return Status{}, errors.New("sandbox: only on Linux: run with --sandbox=false")
	}
	return Status{}, errors.New("sandbox: this pvisor was built with cgo, which cannot confine every thread: build with CGO_ENABLED=0 (make build does), or run with --sandbox=false")
}
