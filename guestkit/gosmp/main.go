// Command gosmp runs in a pvisor guest (a static binary in the initramfs):
// it reports what the Go runtime sees of the guest's CPUs and hashes 16 MiB
// in parallel, one goroutine per MiB. Its output lines:
//
//	gosmp: GOMAXPROCS N NumCPU M
//	gosmp: sha256 HEX
//
// where HEX is Digest (the SHA-256 of the 16 blocks' SHA-256 sums in
// order), which the host computes the same way to check it.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"sync"

	"github.com/pvisor/pvisor/guestkit/gosmp/smpdata"
)

func main() {
	fmt.Printf("gosmp: GOMAXPROCS %d NumCPU %d\n", runtime.GOMAXPROCS(0), runtime.NumCPU())
	data := smpdata.Data()
	sums := make([][sha256.Size]byte, smpdata.Blocks)
	var wg sync.WaitGroup
	for i := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i] = sha256.Sum256(data[i*smpdata.BlockSize : (i+1)*smpdata.BlockSize])
		}()
	}
	wg.Wait()
	d := smpdata.Combine(sums)
	fmt.Printf("gosmp: sha256 %s\n", hex.EncodeToString(d[:]))
}
