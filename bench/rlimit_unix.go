//go:build unix

package bench

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises this process's open-file limit to at least n, the
// hard limit too where the process may; it fails when it cannot.
func RaiseFileLimit(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if uint64(lim.Cur) >= n {
		return nil
	}
	want := lim
	setLimit(&want.Cur, n)
	if uint64(want.Max) < n {
		setLimit(&want.Max, n)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fmt.Errorf("%d open files needed, the limit is %d (hard %d) and raising it failed: %w (ulimit -n)", n, lim.Cur, lim.Max, err)
	}
	return nil
}

// setLimit sets a limit of Rlimit's type, uint64 on Linux and macOS, int64
// on FreeBSD.
func setLimit[T ~int64 | ~uint64](p *T, n uint64) { *p = T(n) }
