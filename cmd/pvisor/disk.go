package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pvisor/pvisor/hv/diskcrypt"
	"github.com/pvisor/pvisor/hv/snapshot"
)

func init() {
	register(command{"disk", "make and read encrypted disk images and copy-on-write overlays: disk create, encrypt, decrypt, info, keygen, overlay-info, flatten", runDisk})
}

const diskUsage = `usage: pvisor disk create OUT --size N (--key-file K | --passphrase-file P)
       pvisor disk encrypt IN OUT (--key-file K | --passphrase-file P)
       pvisor disk decrypt IN OUT (--key-file K | --passphrase-file P)
       pvisor disk info IMG [--key-file K | --passphrase-file P]
       pvisor disk keygen K
       pvisor disk overlay-info BASE OVERLAY
       pvisor disk flatten BASE OVERLAY OUT

An encrypted image is given to a VM as --disk IMG,key=K or --disk IMG,passphrase=P.
create makes a zeroed image of N bytes (K, M or G suffix; a multiple of 512);
encrypt and decrypt convert from and to a raw image; OUT must not exist.
info prints the header (never a key), and checks the key when one is given.
keygen writes a new 32-byte key file, mode 0600.
overlay-info says what a copy-on-write overlay (--disk BASE,overlay=OVERLAY)
holds; flatten writes the disk it shows over BASE as a new raw image OUT.
BASE must be the image the overlay was made over; neither is written.
`

// runDisk is `pvisor disk`.
func runDisk(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("disk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key-file", "", "the image's 32-byte key file (mode 0600)")
	passFile := fs.String("passphrase-file", "", "a file whose first line is the image's passphrase (argon2id)")
	size := fs.String("size", "", "create: the disk's size (K, M or G suffix), a multiple of 512 bytes")
	fs.Usage = func() {
		fmt.Fprint(stderr, diskUsage)
		fs.PrintDefaults()
	}
	// Flags may come before, between or after the operands.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) == 0 {
		fs.Usage()
		return 2
	}
	want := map[string]int{"create": 1, "encrypt": 2, "decrypt": 2, "info": 1, "keygen": 1, "overlay-info": 2, "flatten": 3}
	n, ok := want[pos[0]]
	if !ok {
		fmt.Fprintf(stderr, "pvisor disk: unknown verb %q: want create, encrypt, decrypt, info, keygen, overlay-info or flatten\n", pos[0])
		return 2
	}
	if len(pos)-1 != n {
		fmt.Fprintf(stderr, "pvisor disk %s: want %d operand(s), got %d: %q\n\n%s", pos[0], n, len(pos)-1, pos[1:], diskUsage)
		return 2
	}
	if *size != "" && pos[0] != "create" {
		fmt.Fprintf(stderr, "pvisor disk %s: --size goes with create\n", pos[0])
		return 2
	}
	if pos[0] == "overlay-info" || pos[0] == "flatten" {
		return diskOverlay(pos, *keyFile != "" || *passFile != "", stdout, stderr) // diskoverlay.go
	}
	key, err := loadKey(*keyFile, *passFile)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor disk %s: %v\n", pos[0], err)
		return 2
	}
	if key == nil && pos[0] != "info" && pos[0] != "keygen" {
		fmt.Fprintf(stderr, "pvisor disk %s: give --key-file or --passphrase-file (pvisor disk keygen K makes a key file)\n", pos[0])
		return 2
	}
	if key != nil && pos[0] == "keygen" {
		fmt.Fprintln(stderr, "pvisor disk keygen: takes no key")
		return 2
	}
	switch pos[0] {
	case "create":
		err = diskCreate(pos[1], *size, key, stdout)
	case "encrypt":
		err = diskEncrypt(pos[1], pos[2], key, stdout)
	case "decrypt":
		err = diskDecrypt(pos[1], pos[2], key)
	case "info":
		err = diskInfo(pos[1], key, stdout)
	case "keygen":
		err = snapshot.WriteKeyFile(pos[1], nil)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pvisor disk %s: %v\n", pos[0], err)
		return 1
	}
	return 0
}

func diskCreate(out, size string, key *snapshot.Key, stdout io.Writer) error {
	if size == "" {
		return errors.New("give --size, such as --size 1G")
	}
	n, err := parseSize(size)
	if err != nil || n == 0 || n%diskcrypt.SectorSize != 0 || n > diskcrypt.MaxPayloadSize {
		return fmt.Errorf("--size %q: want a positive multiple of %d bytes (K, M or G suffix), such as --size 1G", size, diskcrypt.SectorSize)
	}
	h, err := diskcrypt.Create(out, int64(n), key, nil, diskcrypt.CreateOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d bytes, disk ID %x\n", out, h.PayloadSize, h.DiskID)
	return nil
}

func diskEncrypt(in, out string, key *snapshot.Key, stdout io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file: give a raw image file", in)
	}
	if fi.Size() == 0 || fi.Size()%diskcrypt.SectorSize != 0 {
		return fmt.Errorf("%s is %d bytes, not a positive multiple of %d: pad it (truncate -s) first", in, fi.Size(), diskcrypt.SectorSize)
	}
	var head [8]byte
	if n, _ := f.ReadAt(head[:], 0); n == len(head) {
		if _, err := diskcrypt.ParseHeader(head[:], 0); !errors.Is(err, diskcrypt.ErrNotDiskImage) {
			return fmt.Errorf("%s is already an encrypted image (pvisor disk info %s)", in, in)
		}
	}
	h, err := diskcrypt.Create(out, fi.Size(), key, bufio.NewReaderSize(f, 1<<20), diskcrypt.CreateOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d bytes of %s, disk ID %x\n", out, h.PayloadSize, in, h.DiskID)
	return nil
}

// diskDecrypt writes the plaintext of the image in to the new raw image
// out (mode 0600), under a temporary name first, so that out holds a
// whole image or nothing.
func diskDecrypt(in, out string, key *snapshot.Key) error {
	s, err := diskcrypt.Open(in, key, diskcrypt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	defer s.Close()
	return writeNewFile(out, func(f *os.File) error {
		_, err := io.CopyBuffer(f, io.NewSectionReader(s, 0, s.Size()), make([]byte, 1<<20))
		return err
	})
}

func diskInfo(path string, key *snapshot.Key, stdout io.Writer) error {
	h, err := diskcrypt.Inspect(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	check := "the header's digest is good; its MAC needs the key (give --key-file or --passphrase-file)"
	if key != nil {
		s, err := diskcrypt.Open(path, key, diskcrypt.Options{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		s.Close()
		check = "the key is the image's, and the header is authentic"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "image:       %s\n", path)
	fmt.Fprintf(&b, "format:      pvisor encrypted disk image, version %d\n", h.Version)
	fmt.Fprintf(&b, "disk size:   %d bytes (%d sectors of %d bytes)\n", h.PayloadSize, h.PayloadSize/int64(h.SectorSize), h.SectorSize)
	fmt.Fprintf(&b, "disk ID:     %s\n", hex.EncodeToString(h.DiskID[:]))
	fmt.Fprintf(&b, "cipher:      XTS-AES-256, sector number as tweak, a key per disk (HKDF-SHA-256 of the master key and the disk ID)\n")
	if h.KDF == snapshot.KDFArgon2id {
		fmt.Fprintf(&b, "master key:  passphrase through argon2id, t=%d, m=%d KiB, p=%d, salt %s\n", h.Argon2.Time, h.Argon2.MemoryKiB, h.Argon2.Threads, hex.EncodeToString(h.Salt[:]))
	} else {
		fmt.Fprintf(&b, "master key:  key file\n")
	}
	fmt.Fprintf(&b, "check:       %s\n", check)
	_, err = stdout.Write(b.Bytes())
	return err
}
