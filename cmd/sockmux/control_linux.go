package main

import "golang.org/x/sys/unix"

// havePeerCred: Linux tells a unix socket's peer (SO_PEERCRED).
const havePeerCred = true

// peerUID is the user id of the process at the other end of the unix
// socket fd.
func peerUID(fd uintptr) (int, error) {
	cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
