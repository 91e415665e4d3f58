package netem

import "errors"

// ErrUnavailable is an emulator this host cannot make: not Linux, no
// privilege to make a network namespace, no tun device, no ip program.
var ErrUnavailable = errors.New("netem: path emulation unavailable")

// ErrBadPath is a Path that cannot be emulated (a negative figure, a loss
// outside [0, 1]) or a path index out of range.
var ErrBadPath = errors.New("netem: bad path")
