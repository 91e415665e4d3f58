package carriers

import "golang.org/x/sys/windows"

// lockFile takes an exclusive lock on the whole of the file (LockFileEx,
// Windows' flock); closing the file lets it go.
func lockFile(fd uintptr) error {
	var ol windows.Overlapped
	return windows.LockFileEx(windows.Handle(fd), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, ^uint32(0), ^uint32(0), &ol)
}
