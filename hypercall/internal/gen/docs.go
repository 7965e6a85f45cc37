package main

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"github.com/pvisor/pvisor/hypercall"
)

// HowToAdd is the contributor recipe; TestHowToAddHonest checks that every
// file and identifier it names exists.
const HowToAdd = `## How to add a hypercall

1. Append one row to ` + "`Table`" + ` in ` + "`hypercall/table.go`" + `: the next number (the row
   index), a snake_case name, group, ` + "`Since: hypercall.Version`" + ` (bump ` + "`Version`" + ` in
   ` + "`hypercall/spec.go`" + ` if this is the first addition since a release), a Doc, the
   arguments in register order (RDI, RSI, RDX, R10, R8, R9) each with type, direction
   and Doc, the Result, and every error with its condition. Shared structures go in
   ` + "`hypercall/shared.go`" + ` with explicit padding and a golden layout test in
   ` + "`hypercall/shared_test.go`" + `.
2. Run ` + "`go generate ./...`" + `. This validates the table and rewrites
   ` + "`hypercall/dispatch_gen.go`" + `, ` + "`guestkit/include/pvisor/hypercall.h`" + ` and this file.
3. Implement the new method of ` + "`hypercall.Handlers`" + ` in ` + "`hv/hypercalls.go`" + ` (the build
   fails until you do). Check every guest-physical pointer through the VM's memory
   and return an ` + "`Errno`" + ` from the table, never a Go error.
4. Add one guest test to ` + "`guestkit/testguest/checks.c`" + `: the success path and each
   error path of the row.
5. ` + "`make test`" + ` runs the freshness check, the table validator and the test guest.

Never renumber or reuse a number: retire a call by setting ` + "`Status: hypercall.Reserved`" + `.
`

func genDocs() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("<!-- %s -->\n\n# pvisor hypercall ABI, version %d\n\n", header, hypercall.Version)
	p("The table in `hypercall/table.go` is the source of this page, of the Go dispatch glue and of\n")
	p("the guest header `guestkit/include/pvisor/hypercall.h`. Policy: `docs/abi-policy.md`.\n\n")
	p("## Calling convention\n\n")
	p("| register | role |\n|---|---|\n| RAX | call number in; result out (negative errno on failure) |\n")
	for i, r := range []string{"RDI", "RSI", "RDX", "R10", "R8", "R9"} {
		p("| %s | argument %d (out-arguments are written back) |\n", r, i+1)
	}
	p("\nNo other register, and no flag a guest may rely on, changes. Guests call through the\n")
	p("hypercall page whose guest-physical address the start-info page gives; the hypervisor\n")
	p("fills it with the instruction right for the engine (`vmcall; ret` on the interpreter).\n")
	p("A guest booted without a start-info page (a Linux kernel) asks for it with\n")
	p("`wrmsr` of a page's guest-physical address to `PVISOR_MSR_HYPERCALL_PAGE` (0x40000000);\n")
	p("the hypervisor writes the sequence there (a bad address raises #GP). The guest detects\n")
	p("pvisor by the CPUID leaf 0x40000000 signature `pvisorpvisor`.\n")
	p("Every pointer is a guest-physical address checked against the calling VM's memory:\n")
	p("a bad one returns -EFAULT. Calls from guest user mode (CPL 3) raise #UD.\n\n")
	p("## Calls\n\n| nr | name | group | status | since |\n|---|---|---|---|---|\n")
	for _, c := range hypercall.Table {
		p("| %d | [`%s`](#%s) | %s | %s | %d |\n", c.Nr, c.Name, c.Name, c.Group, c.Status, c.Since)
	}
	p("\n")
	for _, c := range hypercall.Table {
		p("### %s\n\n", c.Name)
		p("Number %d (`%s`), group %s, %s since ABI %d.\n\n", c.Nr, c.CName(), c.Group, c.Status, c.Since)
		if c.Status == hypercall.Reserved {
			p("Retired: answers -ENOSYS.\n\n")
			continue
		}
		p("**Purpose.** %s\n\n", c.Doc)
		if len(c.Args) == 0 {
			p("**Arguments.** None.\n\n")
		} else {
			p("**Arguments.**\n\n| register | name | type | dir | meaning |\n|---|---|---|---|---|\n")
			for _, a := range c.Args {
				dir := "in"
				if a.Dir == hypercall.Out {
					dir = "out"
				}
				p("| %s | %s | %s | %s | %s |\n", strings.ToUpper(a.Reg.String()), a.Name, a.Type, dir, a.Doc)
			}
			p("\n")
		}
		p("**Result.** %s.\n\n", c.Result)
		errs := c.Errors
		implicit := c.DispatcherErrors()
		if len(errs)+len(implicit) == 0 {
			p("**Errors.** None.\n\n")
		} else {
			p("**Errors.**\n\n| error | when |\n|---|---|\n")
			for _, e := range errs {
				p("| -%s | %s |\n", e.Errno, e.When)
			}
			for _, e := range implicit {
				p("| -%s | %s (checked by the dispatcher) |\n", e.Errno, e.When)
			}
			p("\n")
		}
	}
	p("## Errors\n\n| name | value |\n|---|---|\n")
	for _, e := range hypercall.Errnos {
		p("| %s | %d |\n", e, int64(e))
	}
	p("\n## Constants\n\n| name | value | meaning |\n|---|---|---|\n")
	for _, c := range hypercall.Consts {
		p("| PVISOR_%s | %#x | %s |\n", c.Name, c.Value, c.Doc)
	}
	p("\n## Shared structures\n\nLittle-endian, naturally aligned, padding explicit.\n\n")
	for _, s := range hypercall.Structs {
		t := reflect.TypeOf(s)
		p("### struct %s (%d bytes)\n\n| offset | field | type |\n|---|---|---|\n", cStructName(t), t.Size())
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := snake(f.Name)
			if f.Name == "_" {
				name = "(padding)"
			}
			p("| %d | %s | %s |\n", f.Offset, name, f.Type)
		}
		p("\n")
	}
	p("%s", HowToAdd)
	return b.Bytes()
}
