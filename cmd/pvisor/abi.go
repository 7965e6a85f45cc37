package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pvisor/pvisor/hypercall"
)

func init() {
	register(command{"abi", "print the hypercall table", runABI})
}

func runABI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("abi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Fprintf(stdout, "pvisor hypercall ABI version %d (docs/abi.md)\n\n", hypercall.Version)
	fmt.Fprintf(stdout, "%-3s %-22s %-9s %-7s %-40s %s\n", "nr", "name", "group", "since", "arguments", "errors")
	for _, c := range hypercall.Table {
		var as, es []string
		for _, a := range c.Args {
			dir := ""
			if a.Dir == hypercall.Out {
				dir = "out "
			}
			as = append(as, fmt.Sprintf("%s%s:%s=%s", dir, a.Reg, a.Type, a.Name))
		}
		for _, e := range c.Errors {
			es = append(es, "-"+e.Errno.String())
		}
		fmt.Fprintf(stdout, "%-3d %-22s %-9s %-7d %-40s %s\n", c.Nr, c.Name, c.Group, c.Since, strings.Join(as, " "), strings.Join(es, " "))
	}
	return 0
}
