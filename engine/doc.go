// Package engine owns sockmux's protocol with no I/O: the frame codec and the
// payload layouts of every frame type, the handshake negotiation, the stream
// state machine, per-stream credit windows and send grants, the frame
// scheduling policy, striping, sequencing and the pooled frame buffers. It
// imports no net, os or syscall and reads no clock: times are passed in.
// Forward specs and target policies are package forward's, the SOCKS and
// HTTP proxy codec package proxy's.
//
// Everything here is deterministic and driven by its callers (the actors in
// package actors), so it can be unit-tested and fuzzed without sockets. The
// wire format is specified in docs/PROTOCOL.md; the constants below are its
// source of truth.
package engine
