package sandbox

import (
	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// policy is Profile as a go-seccomp-bpf policy, and the number of calls
// it allows.
func policy(m Mode) (seccomp.Policy, int, error) {
	var plain []string
	var cond []seccomp.NameWithConditions
	for _, c := range Profile {
		switch {
		case c.ArgZero:
			cond = append(cond, seccomp.NameWithConditions{Name: c.Name, Conditions: seccomp.ArgumentConditions{
				{Argument: c.Arg, Operation: seccomp.Equal, Value: 0}}})
		case c.FlagsSet != 0:
			cond = append(cond, seccomp.NameWithConditions{Name: c.Name, Conditions: seccomp.ArgumentConditions{
				{Argument: c.Arg, Operation: seccomp.BitsSet, Value: c.FlagsSet}}})
		case len(c.Ioctls) > 0:
			for _, r := range c.Ioctls {
				cond = append(cond, seccomp.NameWithConditions{Name: c.Name, Conditions: seccomp.ArgumentConditions{
					{Argument: 1, Operation: seccomp.Equal, Value: r}}})
			}
		default:
			plain = append(plain, c.Name)
		}
	}
	def := seccomp.ActionKillProcess
	if m == ModeLog {
		def = seccomp.ActionLog
	}
	p := seccomp.Policy{
		DefaultAction: def,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: enosys},
			{Action: seccomp.ActionAllow, Names: plain, NamesWithCondtions: cond},
		},
	}
	if _, err := p.Assemble(); err != nil {
		return p, 0, err
	}
	return p, len(Profile), nil
}
