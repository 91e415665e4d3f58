package main

import "github.com/spf13/cobra"

// examples are the Example sections of the commands that do not define
// their own beside their flags: what a new user types first.
var examples = map[string]string{
	"demo": `  # both peers in this process on loopback, a forward, and traffic through it
  sockmux demo`,
	"share": `  # one connection to a serial console, shared by every local client
  sockmux share --listen 127.0.0.1:7001 --upstream 'exec:picocom -q /dev/ttyUSB0'

  # one upstream TCP session, shared; the clients on port 6000
  sockmux share --listen 6000 --upstream tcp://10.0.0.5:23

  # the upstream as dialled by a sockmux peer, over a link to it
  sockmux share --listen 6000 --upstream tunnel:hub.example:7000,10.0.0.5:23`,
	"run": `  # every link and share of a config file; SIGHUP or 'sockmux reload' re-reads it
  sockmux run -c /etc/sockmux/sockmux.toml`,
	"check": `  # validate a config file and print what it resolves to
  sockmux check -c examples/hostX.toml`,
	"reload": `  # apply an edited config file to the daemon running it
  sockmux reload -c /etc/sockmux/sockmux.toml`,
	"status": `  # links, carriers, forwards and counters of a running daemon
  sockmux status -c /etc/sockmux/sockmux.toml
  sockmux status -c /etc/sockmux/sockmux.toml --json --watch`,
}

// setExamples fills in the Example of every command that has none.
func setExamples(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Example == "" {
			c.Example = examples[c.Name()]
		}
	}
}
