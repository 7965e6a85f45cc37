package hypercall

import "strings"

// initialisms are spelled in capitals in Go and C-facing names.
var initialisms = map[string]string{
	"msr": "MSR", "cr3": "CR3", "gdt": "GDT", "idt": "IDT", "tlb": "TLB", "mmu": "MMU",
	"irq": "IRQ", "virq": "VIRQ", "ist": "IST", "vcpu": "VCPU", "pte": "PTE", "gpa": "GPA", "tss": "TSS", "ipi": "IPI",
}

// GoName converts a snake_case table name to the exported Go name.
func GoName(snake string) string {
	var b strings.Builder
	for _, w := range strings.Split(snake, "_") {
		if s, ok := initialisms[w]; ok {
			b.WriteString(s)
			continue
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// CName is the C constant naming call c's number.
func (c Call) CName() string { return "PVISOR_HC_" + strings.ToUpper(c.Name) }
