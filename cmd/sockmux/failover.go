package main

// connect's addresses: one ADDR, or a failover list of them, on the
// command line and as a config file's connect key.

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
)

// someAddrs checks connect's positional ADDR [ADDR...].
func someAddrs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s takes one ADDR (host:port), or several to fail over between in turn, got none", errUsage, cmd.Name())
	}
	return nil
}

// newDialers makes a dialer for each address, in order; the first that
// does not parse is the error, naming it.
func newDialers(addrs []string, copts []carriers.Option) ([]carriers.Dialer, error) {
	ds := make([]carriers.Dialer, 0, len(addrs))
	for _, a := range addrs {
		d, err := carriers.NewDialer(a, copts...)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// connectTo keeps n's link to the first of ds, failing over to the others
// in turn.
func connectTo(n *sockmux.Peer, ds []carriers.Dialer) { n.Connect(ds[0], ds[1:]...) }

// errConnectValue is a connect key that is neither an address nor a list.
var errConnectValue = errors.New(`want an address string, or a list of them to fail over between in turn (connect = ["tcp://a:9000", "tcp://b:9000"])`)

// connectAddrs reads a [[link]]'s connect key: "ADDR" or ["ADDR", ...].
func connectAddrs(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%w: element %d is a %T", errConnectValue, i+1, e)
			}
			out = append(out, s)
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, errConnectValue
}

// inUse is, for a report, the address a connect link is on (as the
// config or command line wrote it), from the dialling link's status; the
// first address while the node has no link to say.
func inUse(addrs []string, st sockmux.Status) string {
	for _, ls := range st.Links {
		if i := slices.Index(ls.Addrs, ls.Addr); i >= 0 && i < len(addrs) {
			return addrs[i]
		}
	}
	return addrs[0]
}

// failoverPosition is "n of m" for the address in use of a report's
// failover list ("" for a single address).
func failoverPosition(l linkReport) string {
	if len(l.Addrs) < 2 {
		return ""
	}
	return fmt.Sprintf("%d of %d", slices.Index(l.Addrs, l.Addr)+1, len(l.Addrs))
}
