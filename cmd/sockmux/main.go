// Command sockmux carries many TCP connections, in both directions, over
// one persistent link between two peers.
//
//	sockmux listen [flags] ADDR    accept links on ADDR
//	sockmux connect [flags] ADDR   keep a link to ADDR, redialling with backoff
//	sockmux demo                   both peers in one process, with traffic
//
// This package is the command line and nothing else; the work is done by
// package actors.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pkg/profile"
	"github.com/spf13/cobra"

	"sockmux/actors"
	"sockmux/carriers"
	"sockmux/engine"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// errUsage marks a command line that does not parse; the exit code is 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "sockmux: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "sockmux: %v\n", err)
		return 1
	}
}

// options are the flags listen and connect share.
type options struct {
	forwards []string
	profile  string
}

func (o *options) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVarP(&o.forwards, "local", "L", nil,
		"forward `[bind_addr:]port:host:hostport`: listen here (bind default 127.0.0.1), the peer dials host:hostport (repeatable)")
	cmd.Flags().StringVar(&o.profile, "profile", "",
		"profile the daemon until it exits: cpu|mem|mutex|block (written to a temporary directory named in the log)")
}

// startProfile starts the profile o.profile names and returns its stop.
func (o *options) startProfile() (func(), error) {
	var mode func(*profile.Profile)
	switch o.profile {
	case "":
		return func() {}, nil
	case "cpu":
		mode = profile.CPUProfile
	case "mem":
		mode = profile.MemProfile
	case "mutex":
		mode = profile.MutexProfile
	case "block":
		mode = profile.BlockProfile
	default:
		return nil, fmt.Errorf("%w: bad --profile %q: want cpu, mem, mutex or block", errUsage, o.profile)
	}
	p := profile.Start(mode, profile.NoShutdownHook)
	return p.Stop, nil
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:   "sockmux",
		Short: "Carry many TCP connections, both ways, over one persistent link",
		Long: `sockmux carries many TCP connections, in both directions, over one persistent
link between two peers. One peer listens for the link, the other connects;
either may declare forwards (-L), whichever side dialled.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug|info|warn|error")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v (see '%s --help')", errUsage, err, c.CommandPath())
	})
	logger := func() (*slog.Logger, error) {
		var l slog.Level
		if err := l.UnmarshalText([]byte(logLevel)); err != nil || !validLevel(logLevel) {
			return nil, fmt.Errorf("%w: bad --log-level %q: want debug, info, warn or error", errUsage, logLevel)
		}
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: l})), nil
	}
	root.AddCommand(listenCmd(logger), connectCmd(logger), demoCmd(stdout, logger))
	return root
}

func validLevel(s string) bool {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

// exactlyOneAddr checks the positional ADDR.
func exactlyOneAddr(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: %s takes one ADDR (host:port), got %d arguments", errUsage, cmd.Name(), len(args))
	}
	return nil
}

// parseForwards parses every -L.
func parseForwards(specs []string) ([]engine.Forward, error) {
	var out []engine.Forward
	for _, s := range specs {
		f, err := engine.ParseForward(s)
		if err != nil {
			return nil, fmt.Errorf("%w: -L: %w", errUsage, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func listenCmd(logger func() (*slog.Logger, error)) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "listen [flags] ADDR",
		Short: "Accept links on ADDR (host:port or tcp://host:port)",
		Args:  exactlyOneAddr,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, fwds, err := setup(logger, &o)
			if err != nil {
				return err
			}
			ln, err := carriers.Listen(args[0])
			if err != nil {
				if errors.Is(err, carriers.ErrBadAddress) {
					return fmt.Errorf("%w: %w", errUsage, err)
				}
				return err
			}
			stopProfile, err := o.startProfile()
			if err != nil {
				ln.Close()
				return err
			}
			defer stopProfile()
			node, err := actors.NewNode(actors.Config{Logger: log, Forwards: fwds})
			if err != nil {
				ln.Close()
				return err
			}
			node.Serve(ln)
			<-cmd.Context().Done()
			log.Info("shutting down")
			return node.Close()
		},
	}
	o.addFlags(cmd)
	return cmd
}

func connectCmd(logger func() (*slog.Logger, error)) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "connect [flags] ADDR",
		Short: "Keep a link to the peer at ADDR, redialling with backoff (1 s doubling to 30 s)",
		Args:  exactlyOneAddr,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, fwds, err := setup(logger, &o)
			if err != nil {
				return err
			}
			d, err := carriers.NewDialer(args[0])
			if err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			stopProfile, err := o.startProfile()
			if err != nil {
				return err
			}
			defer stopProfile()
			node, err := actors.NewNode(actors.Config{Logger: log, Forwards: fwds})
			if err != nil {
				return err
			}
			node.Connect(d)
			<-cmd.Context().Done()
			log.Info("shutting down")
			return node.Close()
		},
	}
	o.addFlags(cmd)
	return cmd
}

func setup(logger func() (*slog.Logger, error), o *options) (*slog.Logger, []engine.Forward, error) {
	log, err := logger()
	if err != nil {
		return nil, nil, err
	}
	fwds, err := parseForwards(o.forwards)
	if err != nil {
		return nil, nil, err
	}
	return log, fwds, nil
}
