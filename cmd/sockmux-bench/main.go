// Command sockmux-bench runs the benchmark harness (package bench) for
// tuning: a scenario through sockmux, tunnels on hashicorp/yamux and
// xtaci/smux, and a relay chain, all in this process, with the figures and
// their ratios on stdout.
//
// It is a binary of its own so that the daemon, cmd/sockmux, links none of
// the baselines (yamux, smux) or the charts (gonum/plot): run it with
// `go run ./cmd/sockmux-bench [scenario]`. The go test benchmarks
// (`go test -bench . ./bench/`) measure the same things.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sockmux/sockmux/bench"
)

// errUsage marks a command line that does not parse; the exit code is 2.
var errUsage = errors.New("usage")

func main() {
	// This binary again, as a helper process of the idle scenario.
	if bench.RunHelper() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var level slog.Level
	cmd := benchCmd(func() (*slog.Logger, error) {
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), nil
	})
	cmd.Flags().TextVar(&level, "log-level", slog.LevelInfo, "log level: debug|info|warn|error")
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %w", errUsage, err) })
	err := cmd.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "sockmux-bench: %v (see 'sockmux-bench --help')\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "sockmux-bench: %v\n", err)
		return 1
	}
}
