//go:build !linux

package netem

import (
	"io"
	"net"
)

// nsHandle is empty where there are no network namespaces.
type nsHandle struct{}

func makeNS(net.IP, []net.IP) (nsHandle, []io.ReadWriteCloser, error) {
	return nsHandle{}, nil, ErrUnavailable
}

func (nsHandle) do(func() error) error { return ErrUnavailable }

func (nsHandle) close() {}
