package hypercall

// Version is the ABI version this hypervisor speaks (the highest).
const Version = 6

// MinVersion is the oldest ABI version still accepted from a guest.
const MinVersion = 1

// Reg names an argument register, in convention order.
type Reg int

const (
	RDI Reg = iota
	RSI
	RDX
	R10
	R8
	R9
	numArgRegs
)

var regNames = [...]string{"rdi", "rsi", "rdx", "r10", "r8", "r9"}

func (r Reg) String() string { return regNames[r] }

// Type of an argument.
type Type int

const (
	U64  Type = iota // unsigned 64-bit value
	U32              // unsigned 32-bit value (upper bits must be zero: -EINVAL)
	GPA              // guest-physical address, checked against the VM's memory
	GVA              // guest-virtual address
	Port             // event-channel port number
)

var typeNames = [...]string{"u64", "u32", "gpa", "gva", "port"}

func (t Type) String() string { return typeNames[t] }

// Dir is an argument's direction.
type Dir int

const (
	In  Dir = iota // read by the hypervisor
	Out            // written back to the register by the hypervisor
)

// Status of a call.
type Status int

const (
	Stable       Status = iota // part of the ABI; changes are breaking
	Experimental               // may change without a version bump
	Deprecated                 // still served; guests should move off it
	Reserved                   // number retired; answers -ENOSYS
)

var statusNames = [...]string{"stable", "experimental", "deprecated", "reserved"}

func (s Status) String() string { return statusNames[s] }

// Arg is one argument of a call.
type Arg struct {
	Name string
	Reg  Reg
	Type Type
	Dir  Dir
	Doc  string
}

// Err is one error a call can return, with the condition that causes it.
type Err struct {
	Errno Errno
	When  string
}

// Call is one row of the table.
type Call struct {
	Nr     uint32
	Name   string // snake_case; Go names are derived from it
	Group  string
	Status Status
	Since  uint32 // ABI version that introduced it
	Doc    string // purpose, one paragraph
	Args   []Arg
	Result string // what RAX holds on success
	Errors []Err
	// Early calls may be made before declare_version; every other call
	// answers -EPROTO until the guest has declared its ABI version.
	Early bool
}

// DispatcherErrors returns the errors the dispatcher (and hv's hypercall
// entry) checks for c on top of c.Errors: arguments that do not fit their
// type, and calls made before declare_version.
func (c *Call) DispatcherErrors() []Err {
	var out []Err
	for _, a := range c.Args {
		if a.Dir != In {
			continue
		}
		switch a.Type {
		case U32:
			out = append(out, Err{Errno: EINVAL, When: a.Name + " does not fit in 32 bits"})
		case Port:
			out = append(out, Err{Errno: EINVAL, When: a.Name + " >= MAX_PORTS"})
		}
	}
	if !c.Early && c.Status != Reserved {
		out = append(out, Err{Errno: EPROTO, When: "declare_version has not succeeded yet"})
	}
	return out
}

// CallableBeforeDeclare reports whether call nr may be made before
// declare_version (unknown numbers may: they answer -ENOSYS).
func CallableBeforeDeclare(nr uint64) bool {
	return nr >= uint64(len(Table)) || Table[nr].Early || Table[nr].Status == Reserved
}
