//go:build !(linux || darwin || freebsd)

package main

import "errors"

// havePeerCred: this OS does not tell who is at the other end of a unix
// socket the way the control socket checks it (on Windows, an AF_UNIX
// socket has no SO_PEERCRED), so there is no control socket here.
const havePeerCred = false

func peerUID(uintptr) (int, error) { return -1, errors.ErrUnsupported }
