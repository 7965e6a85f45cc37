// Package tests holds pvisor's end-to-end tests: guests built from the
// project's own sources (cached), booted through the hv API, checked by
// what they print. Tests wait for console markers with deadlines; none
// sleeps for a fixed time.
package tests
