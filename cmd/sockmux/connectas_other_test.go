//go:build !linux

package main

import (
	"errors"
	"net"
)

// syscallConnectAs needs setresuid on a locked thread (connectas_test.go),
// which is Linux's.
func syscallConnectAs(string, int) (net.Conn, error) { return nil, errors.ErrUnsupported }
