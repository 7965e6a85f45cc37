package acpi

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func testConfig(cpus int) Config {
	return Config{Base: 0xE0000, CPUs: cpus, LAPIC: 0xFEE00000, Mailbox: 0xFEBFF000, IOAPIC: 0xFEC00000, IOAPICID: 0, PM1aEvt: 0x600, PM1aCnt: 0x604, PMTmr: 0x608, SCI: 9}
}

// table returns the table at guest-physical address gpa of the image b
// placed at base, after checking its length and checksum.
func table(t *testing.T, b []byte, base, gpa uint64, sig string) []byte {
	t.Helper()
	if gpa < base || gpa-base+hdrLen > uint64(len(b)) {
		t.Fatalf("%s at %#x: outside the tables", sig, gpa)
	}
	h := b[gpa-base:]
	n := binary.LittleEndian.Uint32(h[4:])
	if string(h[:4]) != sig || uint64(n) > uint64(len(h)) || n < hdrLen {
		t.Fatalf("%#x: %q of %d bytes, want %s", gpa, h[:4], n, sig)
	}
	if sig != "FACS" && checksum(h[:n]) != 0 {
		t.Errorf("%s: checksum does not sum to 0", sig)
	}
	return h[:n]
}

func TestBuildWalk(t *testing.T) {
	le := binary.LittleEndian
	for _, cpus := range []int{2, 4, 32, MaxCPUs} {
		cfg := testConfig(cpus)
		b, err := Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > Size {
			t.Fatalf("%d CPUs: %d bytes, more than %d", cpus, len(b), Size)
		}
		r := b[:rsdpLen]
		if string(r[:8]) != "RSD PTR " || checksum(r[:20]) != 0 || checksum(r) != 0 || r[15] != 2 {
			t.Fatalf("bad RSDP % x", r)
		}
		xsdt := table(t, b, cfg.Base, le.Uint64(r[24:]), "XSDT")
		rsdt := table(t, b, cfg.Base, uint64(le.Uint32(r[16:])), "RSDT")
		if len(xsdt) != hdrLen+16 || len(rsdt) != hdrLen+8 {
			t.Fatalf("XSDT %d, RSDT %d bytes", len(xsdt), len(rsdt))
		}
		fadt := table(t, b, cfg.Base, le.Uint64(xsdt[hdrLen:]), "FACP")
		madt := table(t, b, cfg.Base, le.Uint64(xsdt[hdrLen+8:]), "APIC")
		if uint64(le.Uint32(rsdt[hdrLen:])) != le.Uint64(xsdt[hdrLen:]) || uint64(le.Uint32(rsdt[hdrLen+4:])) != le.Uint64(xsdt[hdrLen+8:]) {
			t.Error("the RSDT and the XSDT list different tables")
		}
		if len(fadt) != fadtLen || fadt[8] != fadtRevision {
			t.Errorf("FADT: %d bytes, revision %d", len(fadt), fadt[8])
		}
		dsdt := table(t, b, cfg.Base, le.Uint64(fadt[140:]), "DSDT")
		if !bytes.Equal(dsdt[hdrLen:], dsdtAML) || uint64(le.Uint32(fadt[40:])) != le.Uint64(fadt[140:]) {
			t.Error("DSDT: wrong body or two addresses")
		}
		facs := le.Uint64(fadt[132:])
		if facs%64 != 0 || uint64(le.Uint32(fadt[36:])) != facs {
			t.Errorf("FACS at %#x: want 64-byte alignment, one address", facs)
		}
		table(t, b, cfg.Base, facs, "FACS")
		if le.Uint32(fadt[56:]) != uint32(cfg.PM1aEvt) || le.Uint32(fadt[64:]) != uint32(cfg.PM1aCnt) || le.Uint16(fadt[46:]) != uint16(cfg.SCI) || le.Uint32(fadt[48:]) != 0 {
			t.Error("FADT: wrong PM1a blocks, SCI or SMI command port")
		}
		if le.Uint32(fadt[76:]) != uint32(cfg.PMTmr) || fadt[91] != 4 || le.Uint32(fadt[112:])&fadtTmrValExt == 0 {
			t.Error("FADT: wrong PM timer block, length or width")
		}
		if le.Uint32(fadt[112:])&(1<<20) != 0 {
			t.Error("FADT: hardware-reduced, which takes the 8259 and the PIT away from Linux")
		}
		// MADT: the LAPIC address, then one enabled LAPIC per CPU, then
		// the wake-up structure.
		if le.Uint32(madt[36:]) != uint32(cfg.LAPIC) || le.Uint32(madt[40:])&madtPCATCompat == 0 {
			t.Error("MADT: wrong LAPIC address or no PCAT_COMPAT")
		}
		ids := map[uint8]bool{}
		var mailbox uint64
		ioapics := 0
		for o := hdrLen + 8; o < len(madt); {
			typ, n := madt[o], int(madt[o+1])
			if n < 2 || o+n > len(madt) {
				t.Fatalf("MADT entry at %d: length %d", o, n)
			}
			switch typ {
			case madtTypeLAPIC:
				if madt[o+2] != madt[o+3] || le.Uint32(madt[o+4:])&lapicEnabled == 0 || ids[madt[o+3]] {
					t.Errorf("MADT LAPIC entry % x", madt[o:o+n])
				}
				ids[madt[o+3]] = true
			case madtTypeIOAPIC:
				if n != 12 || madt[o+2] != cfg.IOAPICID || le.Uint32(madt[o+4:]) != uint32(cfg.IOAPIC) || le.Uint32(madt[o+8:]) != 0 {
					t.Errorf("MADT I/O APIC entry % x", madt[o:o+n])
				}
				ioapics++
			case madtTypeWakeup:
				if n < 16 {
					t.Errorf("wake-up structure of %d bytes", n)
				}
				mailbox = le.Uint64(madt[o+8:])
			default:
				t.Errorf("MADT entry of type %d", typ)
			}
			o += n
		}
		if ioapics != 1 {
			t.Errorf("MADT: %d I/O APICs, want 1", ioapics)
		}
		if len(ids) != cpus || mailbox != cfg.Mailbox {
			t.Errorf("MADT: %d LAPICs, mailbox %#x; want %d, %#x", len(ids), mailbox, cpus, cfg.Mailbox)
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"no CPU":            func(c *Config) { c.CPUs = 0 },
		"too many CPUs":     func(c *Config) { c.CPUs = MaxCPUs + 1 },
		"unaligned base":    func(c *Config) { c.Base = 0xE0008 },
		"base above 4 GiB":  func(c *Config) { c.Base = 1 << 32 },
		"unaligned mailbox": func(c *Config) { c.Mailbox = 0xFEBFF010 },
		"no mailbox":        func(c *Config) { c.Mailbox = 0 },
		"LAPIC above 4 GiB": func(c *Config) { c.LAPIC = 1 << 32 },
		"no PM1a":           func(c *Config) { c.PM1aCnt = 0 },
		"no I/O APIC":       func(c *Config) { c.IOAPIC = 0 },
		"I/O APIC ID 16":    func(c *Config) { c.IOAPICID = 16 },
		"no PM timer":       func(c *Config) { c.PMTmr = 0 },
		"SCI not ISA":       func(c *Config) { c.SCI = 16 },
	} {
		c := testConfig(2)
		mut(&c)
		if _, err := Build(c); err == nil {
			t.Errorf("%s: built", name)
		}
	}
}

func TestBuildDeterministic(t *testing.T) {
	a, _ := Build(testConfig(4))
	b, _ := Build(testConfig(4))
	if !bytes.Equal(a, b) {
		t.Error("two builds differ")
	}
}
