//go:build !unix

package actors

// fdLimit is the process's limit of open file descriptors: none known
// here (Windows has no such limit on sockets), so no host is refused for it.
func fdLimit() int { return 0 }
