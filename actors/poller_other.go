//go:build !linux

package actors

import (
	"syscall"

	"github.com/asynkron/protoactor-go/actor"
)

// poller is Linux's (poller_linux.go); elsewhere streams wait for their
// sockets with goroutines of their own.
type poller struct{}

func newPoller(*env, *strand) *poller { return nil }

func (p *poller) add(syscall.RawConn, *actor.PID) uint64 { return 0 }

func (p *poller) remove(uint64, syscall.RawConn) {}

func (p *poller) close() {}
