package bench

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
)

// CarrierKinds are the carriers SockmuxOver knows: each a scheme.
var CarrierKinds = []string{"tcp", "ws", "tls", "wss", "quic"}

// SockmuxOver is the sockmux system with its one carrier of the given kind
// (one of CarrierKinds): tcp:// (what Sockmux uses), ws://, or tls://,
// wss:// and quic:// with a certificate the far node generates and the
// near one pins. A quic:// carrier cannot cross Options' path (the
// emulator relays TCP): see MeasureCarrierPath for a lossy one.
// Its name is "sockmux-" and the kind. The carrier crosses o's path, if
// any, as Sockmux's does.
func SockmuxOver(kind string) System {
	name := "sockmux-" + kind
	return System{Name: name, New: func(target string, o Options) (Tunnel, error) {
		return newSockmuxOver(kind, target, o)
	}}
}

// carrierPath is the path of the WebSocket carriers of SockmuxOver.
const carrierPath = "/bench"

type sockmuxOver struct {
	far, near *actors.Node
	emu       *Emulator
	addr      string
	stateDir  string
}

func (s *sockmuxOver) Addr() string { return s.addr }

func (s *sockmuxOver) Close() {
	s.near.Close()
	closeEmu(s.emu)
	s.far.Close()
	if s.stateDir != "" {
		os.RemoveAll(s.stateDir)
	}
}

func newSockmuxOver(kind, target string, o Options) (_ Tunnel, err error) {
	s := &sockmuxOver{}
	var listenOpts, dialOpts []carriers.Option
	path := ""
	switch kind {
	case "tcp":
	case "ws":
		path = carrierPath
	case "tls", "wss", "quic":
		if kind == "wss" {
			path = carrierPath
		}
		if kind == "quic" && o.emulated() {
			return nil, fmt.Errorf("sockmux over quic: the emulator relays TCP only")
		}
		if s.stateDir, listenOpts, dialOpts, err = pinnedTLS(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("no carrier kind %q (want one of %s)", kind, strings.Join(CarrierKinds, ", "))
	}
	discard := slog.New(slog.DiscardHandler)
	defer func() {
		if err != nil {
			if s.near != nil {
				s.near.Close()
			}
			closeEmu(s.emu)
			if s.far != nil {
				s.far.Close()
			}
			if s.stateDir != "" {
				os.RemoveAll(s.stateDir)
			}
		}
	}()
	if s.far, err = actors.NewNode(actors.Config{Logger: discard, MaxStreams: sockmuxMaxStreams(o)}); err != nil {
		return nil, err
	}
	ln, err := carriers.Listen(kind+"://127.0.0.1:0"+path, listenOpts...)
	if err != nil {
		return nil, err
	}
	s.far.Serve(ln)
	hostport, emu, err := o.across(ln.Addr().String())
	if err != nil {
		return nil, err
	}
	s.emu = emu
	up := make(chan struct{}, 1)
	if s.near, err = actors.NewNode(actors.Config{Logger: discard, MaxStreams: sockmuxMaxStreams(o),
		Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: target}},
		OnLink: func(ev actors.LinkEvent) {
			if ev.Up {
				select {
				case up <- struct{}{}:
				default:
				}
			}
		}}); err != nil {
		return nil, err
	}
	d, err := carriers.NewDialer(kind+"://"+hostport+path, dialOpts...)
	if err != nil {
		return nil, err
	}
	s.near.Connect(d)
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		return nil, errors.New(s.addrOr(kind) + ": the sockmux link did not come up")
	}
	s.addr = s.near.ForwardAddrs()[0].String()
	return s, nil
}

func (s *sockmuxOver) addrOr(kind string) string { return "sockmux over " + kind }

// pinnedTLS makes a state directory (the caller removes it) where a TLS
// listener generates its certificate, and the options of a listener using
// it and of a dialler pinning it.
func pinnedTLS() (dir string, listen, dial []carriers.Option, err error) {
	if dir, err = os.MkdirTemp("", "sockmux-bench-tls"); err != nil {
		return "", nil, nil, err
	}
	cfg := carriers.TLSConfig{StateDir: dir}
	fp, err := cfg.ServerFingerprint()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	return dir, []carriers.Option{carriers.WithTLS(cfg), carriers.WithLogger(nil)},
		[]carriers.Option{carriers.WithTLS(carriers.TLSConfig{Fingerprint: fp}), carriers.WithLogger(nil)}, nil
}
