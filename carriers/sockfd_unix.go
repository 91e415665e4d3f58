//go:build unix

package carriers

// sockFD is a RawConn's descriptor as syscall's socket calls take it.
func sockFD(fd uintptr) int { return int(fd) }
