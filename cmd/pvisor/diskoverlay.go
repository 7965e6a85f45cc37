package main

import (
	"fmt"
	"io"
	"os"

	"github.com/pvisor/pvisor/hv/overlay"
	"github.com/pvisor/pvisor/hv/virtio"
)

// diskOverlay is `pvisor disk overlay-info BASE OVERLAY` and
// `pvisor disk flatten BASE OVERLAY OUT`.
func diskOverlay(pos []string, keyed bool, stdout, stderr io.Writer) int {
	if keyed {
		fmt.Fprintf(stderr, "pvisor disk %s: takes no key (an overlay is over a raw image)\n", pos[0])
		return 2
	}
	s, err := openOverlayRO(pos[1], pos[2])
	if err != nil {
		fmt.Fprintf(stderr, "pvisor disk %s: %v\n", pos[0], err)
		return 1
	}
	defer s.Close()
	if pos[0] == "overlay-info" {
		fmt.Fprintf(stdout, "overlay %s over %s (%v)\ncluster size %d, %d clusters in the overlay\n",
			pos[2], pos[1], s.Base(), s.ClusterSize(), s.Clusters())
		return 0
	}
	if err := flatten(s, pos[3]); err != nil {
		fmt.Fprintf(stderr, "pvisor disk flatten: %v\n", err)
		return 1
	}
	return 0
}

// openOverlayRO opens the overlay at ovl over the image at base, both
// read-only.
func openOverlayRO(base, ovl string) (*overlay.Store, error) {
	for _, f := range [][2]string{{"base image", base}, {"overlay", ovl}} {
		fi, err := os.Stat(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s: %v: pass the path of an existing file", f[0], err)
		}
		if err := checkFile(f[0], f[1], fi, 1<<62); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(base)
	if err != nil {
		return nil, err
	}
	bs, err := virtio.NewFileStore(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return overlay.Open(ovl, bs, overlay.Options{ReadOnly: true})
}

// flatten writes the disk s shows to a new file at out; a failure removes
// it.
func flatten(s *overlay.Store, out string) error {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%v: give a path that does not exist yet", err)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < s.Size() && err == nil; {
		n := int(min(int64(len(buf)), s.Size()-off))
		if _, err = s.ReadAt(buf[:n], off); err == nil {
			_, err = f.WriteAt(buf[:n], off)
		}
		off += int64(n)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
	}
	return err
}
