package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sockmux/sockmux/carriers"
)

// proxyNone is the --proxy value that dials directly whatever the
// environment says.
const proxyNone = "none"

// addProxyFlag defines --proxy, for the commands that dial carriers.
func (o *options) addProxyFlag(f *pflag.FlagSet) {
	f.StringVar(&o.proxy, "proxy", "",
		"dial carriers through the proxy at `URL`: http://[user:pass@]host:port (CONNECT), socks5://... or socks5h://... (the proxy resolves names); "+
			"none: directly (default: as curl reads HTTPS_PROXY, ALL_PROXY and NO_PROXY)")
}

// carrierOptions are the carrier options of the flags: TLS, the logger and
// the proxy (--proxy, or the environment's).
func (o *options) carrierOptions(log *slog.Logger) ([]carriers.Option, error) {
	copts := []carriers.Option{carriers.WithTLS(o.tls), carriers.WithLogger(log)}
	switch v := strings.TrimSpace(o.proxy); {
	case v == "":
		copts = append(copts, carriers.WithProxyFromEnvironment(os.LookupEnv))
	case strings.EqualFold(v, proxyNone):
		copts = append(copts, carriers.WithProxy(nil))
	default:
		p, err := carriers.ParseProxy(v)
		if err != nil {
			return nil, flagErr("proxy", fmt.Errorf("%w: --proxy: %w", errUsage, err))
		}
		copts = append(copts, carriers.WithProxy(p))
	}
	return copts, nil
}
