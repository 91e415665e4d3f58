// Package engine owns sockmux's protocol with no I/O: the frame codec and the
// payload layouts of every frame type, the handshake negotiation, the stream
// state machine, per-stream credit windows, the frame scheduling policy, the
// pooled frame buffers and the forward specifications.
//
// Everything here is deterministic and driven by its callers (the actors in
// package actors), so it can be unit-tested and fuzzed without sockets. The
// wire format is specified in docs/PROTOCOL.md; the constants below are its
// source of truth.
package engine
