package hypercall

import (
	"fmt"
	"regexp"
)

var snakeRE = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// Validate checks the table's invariants: numbers are the row index (literal,
// dense, append-only), names unique snake_case, arguments in convention
// order with unique registers, everything documented, versions sane. The
// generator refuses to write anything from a table that fails.
func Validate(table []Call) error {
	names := map[string]bool{}
	for i, c := range table {
		where := fmt.Sprintf("row %d (%s)", i, c.Name)
		if c.Nr != uint32(i) {
			return fmt.Errorf("%s: number %d, want %d: numbers are the row index, append-only", where, c.Nr, i)
		}
		if !snakeRE.MatchString(c.Name) {
			return fmt.Errorf("%s: name must be snake_case", where)
		}
		if names[c.Name] {
			return fmt.Errorf("%s: duplicate name", where)
		}
		names[c.Name] = true
		if c.Since < 1 || c.Since > Version {
			return fmt.Errorf("%s: since %d outside 1..%d", where, c.Since, Version)
		}
		if c.Status == Reserved {
			if len(c.Args) != 0 || len(c.Errors) != 0 {
				return fmt.Errorf("%s: a reserved row keeps no arguments or errors", where)
			}
			continue
		}
		if c.Doc == "" || c.Group == "" || c.Result == "" {
			return fmt.Errorf("%s: needs Doc, Group and Result", where)
		}
		if len(c.Args) > int(numArgRegs) {
			return fmt.Errorf("%s: more than %d arguments", where, numArgRegs)
		}
		argNames := map[string]bool{}
		for j, a := range c.Args {
			if a.Reg != Reg(j) {
				return fmt.Errorf("%s: argument %s in %v, want %v: arguments take registers in convention order", where, a.Name, a.Reg, Reg(j))
			}
			if !snakeRE.MatchString(a.Name) || argNames[a.Name] {
				return fmt.Errorf("%s: argument name %q must be unique snake_case", where, a.Name)
			}
			argNames[a.Name] = true
			if a.Doc == "" {
				return fmt.Errorf("%s: argument %s has no Doc", where, a.Name)
			}
			if a.Dir == Out && a.Type == GPA {
				return fmt.Errorf("%s: an out-argument cannot be a GPA", where)
			}
		}
		seen := map[Errno]bool{}
		for _, e := range c.Errors {
			if e.When == "" {
				return fmt.Errorf("%s: error %v has no condition", where, e.Errno)
			}
			if _, ok := errnoNames[e.Errno]; !ok {
				return fmt.Errorf("%s: unknown errno %d", where, e.Errno)
			}
			if seen[e.Errno] {
				return fmt.Errorf("%s: error %v listed twice", where, e.Errno)
			}
			seen[e.Errno] = true
		}
	}
	return nil
}
