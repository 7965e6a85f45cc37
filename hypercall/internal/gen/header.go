package main

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"github.com/pvisor/pvisor/hypercall"
)

// genHeader writes the guest's C header: constants, shared structs (from
// the Go structs by reflection, padding explicit, sizes asserted with
// _Static_assert) and one inline helper per call.
func genHeader() ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("/* %s */\n", header)
	p(`/*
 * pvisor hypercall ABI for guests. Calls go through the hypercall page: set
 * pvisor_hypercall_entry to its (virtual) address before the first call.
 * Number in RAX, arguments in RDI, RSI, RDX, R10, R8, R9, result in RAX (a
 * negative errno on failure); out-arguments come back in their registers;
 * nothing else changes. See docs/abi.md.
 */
#ifndef PVISOR_HYPERCALL_H
#define PVISOR_HYPERCALL_H

#ifdef __KERNEL__
#include <linux/types.h>
typedef u8 pv_u8; typedef s8 pv_s8; typedef u32 pv_u32; typedef s32 pv_s32; typedef u64 pv_u64;
#else
typedef unsigned char pv_u8; typedef signed char pv_s8; typedef unsigned int pv_u32;
typedef int pv_s32; typedef unsigned long long pv_u64;
#endif

`)
	p("/* Hypercall numbers. */\n")
	for _, c := range hypercall.Table {
		p("#define %-36s %d\n", c.CName(), c.Nr)
	}
	p("#define %-36s %d /* numbers at or above this are unassigned */\n", "PVISOR_HC_COUNT", len(hypercall.Table))
	p("\n/* Errors (returned negated). */\n")
	for _, e := range hypercall.Errnos {
		p("#define PVISOR_%-29s %d\n", e.String(), int64(e))
	}
	p("\n/* Constants. */\n")
	for _, c := range hypercall.Consts {
		p("#define PVISOR_%-29s 0x%xULL /* %s */\n", c.Name, c.Value, c.Doc)
	}
	p("\n")
	for _, s := range hypercall.Structs {
		if err := cStruct(&b, reflect.TypeOf(s)); err != nil {
			return nil, err
		}
	}
	p(`/* Set by the guest to the virtual address of the hypercall page. */
extern unsigned long pvisor_hypercall_entry;

static inline long pvisor_hypercall6(unsigned long nr, unsigned long *a)
{
	register unsigned long r10 __asm__("r10") = a[3];
	register unsigned long r8 __asm__("r8") = a[4];
	register unsigned long r9 __asm__("r9") = a[5];
	long ret;
	__asm__ volatile("call *%%[entry]"
			 : "=a"(ret), "+D"(a[0]), "+S"(a[1]), "+d"(a[2]), "+r"(r10), "+r"(r8), "+r"(r9)
			 : "0"(nr), [entry] "m"(pvisor_hypercall_entry)
			 : "memory", "cc");
	a[3] = r10;
	a[4] = r8;
	a[5] = r9;
	return ret;
}

`)
	for _, c := range hypercall.Table {
		if c.Status == hypercall.Reserved {
			continue
		}
		var params []string
		for _, a := range c.Args {
			if a.Dir == hypercall.Out {
				params = append(params, "pv_u64 *"+a.Name)
			} else {
				params = append(params, "pv_u64 "+a.Name)
			}
		}
		if len(params) == 0 {
			params = []string{"void"}
		}
		p("/* %s */\n", wrap(c.Doc, " * "))
		p("static inline long pvisor_%s(%s)\n{\n", c.Name, strings.Join(params, ", "))
		p("\tunsigned long r[6] = {0, 0, 0, 0, 0, 0};\n\tlong ret;\n\n")
		for i, a := range c.Args {
			if a.Dir == hypercall.In {
				p("\tr[%d] = %s;\n", i, a.Name)
			}
		}
		p("\tret = pvisor_hypercall6(%s, r);\n", c.CName())
		for i, a := range c.Args {
			if a.Dir == hypercall.Out {
				p("\tif (ret >= 0)\n\t\t*%s = r[%d];\n", a.Name, i)
			}
		}
		p("\treturn ret;\n}\n\n")
	}
	p("#endif /* PVISOR_HYPERCALL_H */\n")
	return b.Bytes(), nil
}

func wrap(s, prefix string) string {
	words := strings.Fields(s)
	var lines []string
	line := ""
	for _, w := range words {
		if len(line)+len(w) > 76 {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	lines = append(lines, line)
	return strings.Join(lines, "\n"+prefix)
}

// snake converts a Go identifier to snake_case, keeping initialisms whole,
// plurals included (NrVCPUs: nr_vcpus, GPAList: gpa_list).
func snake(s string) string {
	var b strings.Builder
	r := []rune(s)
	upper := func(i int) bool { return i < len(r) && unicode.IsUpper(r[i]) }
	for i, c := range r {
		// A plural "s" ends the initialism it follows: no split before
		// its last capital.
		plural := i+1 < len(r) && r[i+1] == 's' && (i+2 == len(r) || upper(i+2))
		if unicode.IsUpper(c) && i > 0 && (unicode.IsLower(r[i-1]) || (i+1 < len(r) && unicode.IsLower(r[i+1]) && upper(i-1) && !plural)) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

func cStructName(t reflect.Type) string { return "pvisor_" + snake(t.Name()) }

func cScalar(k reflect.Kind) (string, error) {
	switch k {
	case reflect.Uint8:
		return "pv_u8", nil
	case reflect.Int8:
		return "pv_s8", nil
	case reflect.Uint32:
		return "pv_u32", nil
	case reflect.Int32:
		return "pv_s32", nil
	case reflect.Uint64:
		return "pv_u64", nil
	}
	return "", fmt.Errorf("no C type for %v", k)
}

func cStruct(b *bytes.Buffer, t reflect.Type) error {
	name := cStructName(t)
	fmt.Fprintf(b, "struct %s {\n", name)
	pad := 0
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fname := snake(f.Name)
		if f.Name == "_" {
			fname = fmt.Sprintf("_pad%d", pad)
			pad++
		}
		ft := f.Type
		dims := ""
		for ft.Kind() == reflect.Array {
			dims += fmt.Sprintf("[%d]", ft.Len())
			ft = ft.Elem()
		}
		var ctype string
		if ft.Kind() == reflect.Struct {
			ctype = "struct " + cStructName(ft)
		} else {
			var err error
			if ctype, err = cScalar(ft.Kind()); err != nil {
				return fmt.Errorf("%s.%s: %v", t.Name(), f.Name, err)
			}
		}
		fmt.Fprintf(b, "\t%s %s%s; /* offset %d */\n", ctype, fname, dims, f.Offset)
	}
	fmt.Fprintf(b, "};\n_Static_assert(sizeof(struct %s) == %d, \"%s size\");\n\n", name, t.Size(), name)
	return nil
}
