package sockmux

import (
	"net"
	"time"

	"github.com/sockmux/sockmux/actors"
)

// Stream is one stream of a Session: a net.Conn with CloseWrite and the
// target it was opened to. Its bytes arrive in order, with flow control:
// Write waits while the peer's window and a send buffer of 256 KiB are
// full; Read returns what the peer sent, io.EOF once the peer has shut its
// write side (Close or CloseWrite), and an error wrapping ErrStreamReset
// if the stream was cut short. Past a deadline Read and Write return
// os.ErrDeadlineExceeded (a net.Error whose Timeout is true); the stream
// goes on, and a later deadline may be set. Its methods may be called
// from several goroutines at once.
type Stream struct {
	c *actors.LocalConn
	s *Session
}

// Read reads what the peer wrote.
func (st *Stream) Read(b []byte) (int, error) { return st.c.Read(b) }

// Write writes b for the peer: it returns once all of b is queued, or
// with the reason it could not be.
func (st *Stream) Write(b []byte) (int, error) { return st.c.Write(b) }

// CloseWrite shuts the write side: the peer reads to io.EOF once what was
// written has reached it. Reading goes on.
func (st *Stream) CloseWrite() error { return st.c.CloseWrite() }

// Close shuts the write side as CloseWrite does and stops reading: what
// the peer sent that was not read is dropped, and the stream is reset if
// the peer sends more. Blocked Reads and Writes return net.ErrClosed.
func (st *Stream) Close() error { return st.c.Close() }

// Target is what the stream was opened to (Session.Open's target).
func (st *Stream) Target() string { return st.c.Target() }

// LocalAddr is the session's local address.
func (st *Stream) LocalAddr() net.Addr { return st.s.LocalAddr() }

// RemoteAddr is the session's peer address.
func (st *Stream) RemoteAddr() net.Addr { return st.s.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (st *Stream) SetDeadline(t time.Time) error { return st.c.SetDeadline(t) }

// SetReadDeadline sets the deadline of Reads, pending ones included.
func (st *Stream) SetReadDeadline(t time.Time) error { return st.c.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of Writes, pending ones included.
func (st *Stream) SetWriteDeadline(t time.Time) error { return st.c.SetWriteDeadline(t) }
