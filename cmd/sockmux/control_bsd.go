//go:build darwin || freebsd

package main

import "golang.org/x/sys/unix"

// havePeerCred: macOS and FreeBSD tell a unix socket's peer
// (LOCAL_PEERCRED).
const havePeerCred = true

// peerUID is the user id of the process at the other end of the unix
// socket fd.
func peerUID(fd uintptr) (int, error) {
	cred, err := unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
