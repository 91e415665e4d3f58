package bench

import (
	"io"
	"net"

	"github.com/hashicorp/yamux"
)

// NewYamux builds a tunnel to target on github.com/hashicorp/yamux with its
// default configuration (only its log goes to io.Discard), its carrier
// across o's path. yamux has no stream limit to raise.
func NewYamux(target string, o Options) (Tunnel, error) {
	return join(yamuxFar, yamuxNear)(target, o)
}

func yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	return c
}

func yamuxFar(target string, _ Options) (Tunnel, error) {
	return muxFar(target, func(c net.Conn) (muxSession, error) {
		s, err := yamux.Server(c, yamuxConfig())
		return yamuxSession{s}, err
	})
}

func yamuxNear(carrier, _ string, _ Options) (Tunnel, error) {
	return muxNear(carrier, func(c net.Conn) (muxSession, error) {
		s, err := yamux.Client(c, yamuxConfig())
		return yamuxSession{s}, err
	})
}

type yamuxSession struct{ s *yamux.Session }

func (y yamuxSession) Open() (muxStream, error) {
	s, err := y.s.OpenStream()
	if err != nil {
		return nil, err
	}
	return yamuxStream{s}, nil
}

func (y yamuxSession) Accept() (muxStream, error) {
	s, err := y.s.AcceptStream()
	if err != nil {
		return nil, err
	}
	return yamuxStream{s}, nil
}

func (y yamuxSession) Close() error { return y.s.Close() }

// yamuxStream: a yamux stream's Close is its half-close (it sends FIN and
// can still read); once both sides have sent FIN the stream is gone.
type yamuxStream struct{ *yamux.Stream }

func (s yamuxStream) CloseWrite() error { return s.Stream.Close() }
