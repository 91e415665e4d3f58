package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCmd writes the man pages of every command, generated from the same
// commands, flags and examples as --help (docs/man holds them).
func manCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "man [DIR]",
		Short: "Write sockmux's man pages (sockmux.1, sockmux-connect.1, ...) into DIR (default: the current folder)",
		Example: `  sockmux man /usr/local/share/man/man1 && mandb
  sockmux man docs/man && man -l docs/man/sockmux-connect.1`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // no date: pages change only with the commands
			hdr := &doc.GenManHeader{Title: "SOCKMUX", Section: "1", Source: "sockmux " + version, Manual: "sockmux manual"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			fmt.Fprintf(stdout, "man pages written to %s\n", dir)
			return nil
		},
	}
}
