// Package loader turns a kernel image and a boot configuration into a boot
// plan: the bytes to place at each guest-physical address, the pages the
// hypervisor must fill itself (the hypercall page), the memory map and the
// vCPU's entry state. It boots three kinds of image: a freestanding ELF64
// guest (docs/boot.md), a Linux vmlinux ELF and a Linux bzImage (the 64-bit
// boot protocol).
//
// Invariants:
//   - Load is pure: it reads its arguments and returns a Plan or an error.
//     It never touches a VM, and it allocates O(len(kernel)) plus a few
//     pages, never anything proportional to the guest's memory size.
//   - Every region of an accepted Plan lies inside [0, MemBytes), no two
//     overlap (kernel segments, initramfs, the loader's own pages), each
//     region's Data fits in it, and the entry point lies in a kernel
//     segment. Segment.Data aliases Config.Kernel or Config.Initrd: the
//     caller must not change them while it uses the plan.
//   - Every size, offset and address read from an image is checked for
//     overflow before it is used.
//
// Concurrency: none; Load may run on any goroutine.
//
// Trust boundary: the kernel, initramfs and command line come from the
// operator and are hostile. A malformed image is an error that says what
// was wrong, never a panic.
package loader
