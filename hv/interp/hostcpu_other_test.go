//go:build !(linux && amd64)

package interp

// hostCPU on a host that is not x86-64 (or not Linux): no host oracle runs
// there, so no vendor applies.
func hostCPU() hostVariant { return hostVariant{} }
