package hypercall

import "fmt"

// Errno is a guest-facing error number. Values are Linux's, so a Linux
// guest can return them unchanged. The table is the only source of the
// errors hypercalls return.
type Errno int64

const (
	EPERM  Errno = 1
	ENOENT Errno = 2
	EIO    Errno = 5
	EAGAIN Errno = 11
	EFAULT Errno = 14
	EBUSY  Errno = 16
	ENODEV Errno = 19
	EINVAL Errno = 22
	ENOSPC Errno = 28
	ENOSYS Errno = 38
	EPROTO Errno = 71
)

var errnoNames = map[Errno]string{
	EPERM: "EPERM", ENOENT: "ENOENT", EIO: "EIO", EAGAIN: "EAGAIN", EFAULT: "EFAULT", EBUSY: "EBUSY", ENODEV: "ENODEV",
	EINVAL: "EINVAL", ENOSPC: "ENOSPC", ENOSYS: "ENOSYS", EPROTO: "EPROTO",
}

// Errnos lists every errno of the ABI in numeric order.
var Errnos = []Errno{EPERM, ENOENT, EIO, EAGAIN, EFAULT, EBUSY, ENODEV, EINVAL, ENOSPC, ENOSYS, EPROTO}

func (e Errno) String() string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return fmt.Sprintf("errno(%d)", int64(e))
}

// Ret is the RAX value that reports e to the guest.
func (e Errno) Ret() uint64 { return uint64(-int64(e)) }

// Error implements error, so handlers can return an Errno.
func (e Errno) Error() string { return e.String() }
