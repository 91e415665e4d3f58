package bench

import (
	"errors"
	"io"
	"net"

	"github.com/xtaci/smux"
)

// NewSmux builds a tunnel to target on github.com/xtaci/smux with its
// default configuration, its carrier across o's path. smux has no stream
// limit to raise.
func NewSmux(target string, o Options) (Tunnel, error) {
	return join(smuxFar, smuxNear)(target, o)
}

func smuxFar(target string, _ Options) (Tunnel, error) {
	return muxFar(target, func(c net.Conn) (muxSession, error) {
		s, err := smux.Server(c, smux.DefaultConfig())
		return smuxSession{s}, err
	})
}

func smuxNear(carrier, _ string, _ Options) (Tunnel, error) {
	return muxNear(carrier, func(c net.Conn) (muxSession, error) {
		s, err := smux.Client(c, smux.DefaultConfig())
		return smuxSession{s}, err
	})
}

type smuxSession struct{ s *smux.Session }

func (m smuxSession) Open() (muxStream, error) {
	s, err := m.s.OpenStream()
	if err != nil {
		return nil, err
	}
	return smuxStream{s}, nil
}

func (m smuxSession) Accept() (muxStream, error) {
	s, err := m.s.AcceptStream()
	if err != nil {
		return nil, err
	}
	return smuxStream{s}, nil
}

func (m smuxSession) Close() error { return m.s.Close() }

// smuxStream works around a race in smux v1.5 when both sides have
// half-closed: the peer's last data and its FIN can arrive while a reader
// waits, the stream "dies" on the FIN, and the wait may pick the death
// (io.ErrClosedPipe) over the data, which is still buffered. Read and
// WriteTo take the buffered data before believing it. Without this the
// tunnel loses a stream's last bytes now and then (the sink's count, in
// the bulk workloads), which a smux user would see too.
type smuxStream struct{ *smux.Stream }

func (s smuxStream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	if n == 0 && errors.Is(err, io.ErrClosedPipe) {
		return s.Stream.Read(b) // the buffered data, else io.EOF
	}
	return n, err
}

// WriteTo keeps smux's own WriteTo, the fast path io.Copy takes, but
// ends with nil at the end of the stream as io.WriterTo should (smux's
// returns io.EOF).
func (s smuxStream) WriteTo(w io.Writer) (int64, error) {
	n, err := s.Stream.WriteTo(w)
	if errors.Is(err, io.EOF) {
		return n, nil
	}
	if !errors.Is(err, io.ErrClosedPipe) {
		return n, err
	}
	m, err := io.Copy(w, onlyReader{s})
	return n + m, err
}
