//go:build !unix

package bench

// RaiseFileLimit: Windows has no open-file limit to raise (its handles
// are bounded by memory), so there is nothing to do.
func RaiseFileLimit(uint64) error { return nil }
