package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	key := make([]byte, 32)
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
		flag string // the error names it
	}{
		{"no name", Config{Bind: "127.0.0.1:0"}, ErrConfig, "--cluster"},
		{"no bind", Config{Name: "x"}, ErrConfig, "--cluster-bind"},
		{"bad bind port", Config{Name: "x", Bind: "127.0.0.1:99999"}, ErrConfig, "--cluster-bind"},
		{"unknown provider", Config{Name: "x", Bind: "127.0.0.1:0", Provider: "zookeper"}, ErrConfig, "--cluster-provider"},
		{"bad seed", Config{Name: "x", Bind: "127.0.0.1:0", Seeds: []string{"hub-a"}}, ErrConfig, "--cluster-seed"},
		{"every address, no advertise", Config{Name: "x", Bind: "0.0.0.0:7946", Key: key}, ErrConfig, "--cluster-advertise"},
		{"non-loopback without key", Config{Name: "x", Bind: "0.0.0.0:7946", Advertise: "10.0.0.1:7946"}, ErrNoKey, "--cluster-key"},
		{"a name without key", Config{Name: "x", Bind: "hub-a.example:7946"}, ErrNoKey, "--cluster-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.withDefaults()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.flag) {
				t.Errorf("error %q does not name %s", err, tc.flag)
			}
		})
	}
	if _, err := (Config{Name: "x", Bind: "127.0.0.1:0"}).withDefaults(); err != nil {
		t.Errorf("loopback without a key: %v, want it allowed", err)
	}
}

func TestStartRefusesShortKey(t *testing.T) {
	_, err := Start(Config{Name: "x", Bind: "127.0.0.1:0", Key: []byte("short")})
	if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "--cluster-key") {
		t.Errorf("Start with a 5-byte key: %v, want ErrKey naming --cluster-key", err)
	}
}

func TestStartReportsBusyBind(t *testing.T) {
	m := start(t, Config{})
	_, err := Start(Config{Name: "test", Bind: m.ID()})
	if !errors.Is(err, ErrStart) {
		t.Errorf("Start on a bound port: %v, want ErrStart", err)
	}
}
