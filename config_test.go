package sockmux_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/identity"
)

func TestValidate(t *testing.T) {
	pub := identity.PublicKey{}
	dial := func(context.Context) (net.Conn, error) { return nil, errors.New("unused") }
	cases := []struct {
		field  string // "" : valid
		change func(*sockmux.Config)
	}{
		{"", func(*sockmux.Config) {}},
		{"", func(c *sockmux.Config) { c.Keepalive, c.ResumeWindow = -1, -1 }},
		{"", func(c *sockmux.Config) { c.Carriers, c.Dialer = 4, dial }},
		{"Window", func(c *sockmux.Config) { c.Window = 0 }},
		{"MaxWindow", func(c *sockmux.Config) { c.MaxWindow = c.Window - 1 }},
		{"LinkBudget", func(c *sockmux.Config) { c.LinkBudget = 0 }},
		{"MaxStreams", func(c *sockmux.Config) { c.MaxStreams = 0 }},
		{"AcceptBacklog", func(c *sockmux.Config) { c.AcceptBacklog = 0 }},
		{"Keepalive", func(c *sockmux.Config) { c.Keepalive = 0 }},
		{"HandshakeTimeout", func(c *sockmux.Config) { c.HandshakeTimeout = 0 }},
		{"OpenTimeout", func(c *sockmux.Config) { c.OpenTimeout = -1 }},
		{"Carriers", func(c *sockmux.Config) { c.Carriers = 0 }},
		{"Carriers", func(c *sockmux.Config) { c.Carriers = 17 }},
		{"Carriers", func(c *sockmux.Config) { c.Carriers = 2 }},
		{"ResumeWindow", func(c *sockmux.Config) { c.ResumeWindow = 0 }},
		{"Identity", func(c *sockmux.Config) { c.PeerKey = &pub }},
		{"Key", func(c *sockmux.Config) { c.Key = []byte("short") }},
	}
	for _, tc := range cases {
		cfg := sockmux.DefaultConfig()
		tc.change(cfg)
		err := cfg.Validate()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("valid config refused: %v", err)
		case tc.field != "" && (!errors.Is(err, sockmux.ErrBadConfig) || !strings.Contains(err.Error(), tc.field+":")):
			t.Errorf("%s: got %v, want ErrBadConfig naming the field", tc.field, err)
		}
	}
}

// A bad config is refused before anything runs, and the carrier closed.
func TestBadConfigClosesCarrier(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	cfg := sockmux.DefaultConfig()
	cfg.Window = 0
	if _, err := sockmux.Client(c, cfg); !errors.Is(err, sockmux.ErrBadConfig) {
		t.Fatalf("Client: %v, want ErrBadConfig", err)
	}
	if _, err := peer.Read(make([]byte, 1)); err == nil {
		t.Error("the carrier is still open")
	}
}
