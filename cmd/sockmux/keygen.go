package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/identity"
)

// pskBytes is how much randomness `keygen --psk` draws: 256 bits.
const pskBytes = 32

// defaultIdentityFile is where keygen writes a key when -f names none:
// $XDG_CONFIG_HOME/sockmux/id_x25519 (or ~/.config/sockmux/id_x25519).
func defaultIdentityFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("%w: no config folder for the key (%w): name one with -f FILE", errUsage, err)
	}
	return filepath.Join(dir, "sockmux", "id_x25519"), nil
}

// keygenCmd makes an identity (a private key file and its public key
// line) or, with --psk, prints a fresh pre-shared key.
func keygenCmd(stdout io.Writer) *cobra.Command {
	var (
		psk, force    bool
		file, comment string
	)
	c := &cobra.Command{
		Use:   "keygen [-f FILE] [-C COMMENT] [--force] | keygen --psk",
		Short: "Make an identity (X25519 private key FILE, public key printed and in FILE.pub), or print a pre-shared key",
		Args:  cobra.NoArgs,
		Example: "  sockmux keygen -f ~/.config/sockmux/id_x25519 -C laptop\n" +
			"  # prints: sockmux-x25519 BASE64 laptop -- a line for the listener's --authorized-keys\n" +
			"  sockmux keygen --psk > sockmux.key && chmod 600 sockmux.key\n" +
			"  # copy sockmux.key to the other peer; both pass --key-file sockmux.key",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if psk {
				for _, f := range []string{"file", "comment", "force"} {
					if cmd.Flags().Changed(f) {
						return fmt.Errorf("%w: --%s makes no sense with --psk", errUsage, f)
					}
				}
				k, err := newPSK()
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(stdout, k)
				return err
			}
			if file == "" {
				var err error
				if file, err = defaultIdentityFile(); err != nil {
					return err
				}
			}
			if !cmd.Flags().Changed("comment") {
				comment = defaultComment() // as ssh-keygen's: user@host
			}
			k, err := identity.Generate(comment)
			if err != nil {
				return err
			}
			if err := k.Write(file, force); err != nil {
				if errors.Is(err, identity.ErrKeyExists) {
					return fmt.Errorf("%w: %w", errUsage, err)
				}
				return err
			}
			_, err = fmt.Fprintln(stdout, k.Public.Line(comment))
			return err
		},
	}
	c.Flags().BoolVar(&psk, "psk", false, "print a pre-shared key (the key both peers' --key-file holds) instead")
	c.Flags().StringVarP(&file, "file", "f", "", "write the private key to `FILE` (mode 0600) and its public key to FILE.pub (default $XDG_CONFIG_HOME/sockmux/id_x25519)")
	c.Flags().StringVarP(&comment, "comment", "C", "", "`COMMENT` at the end of the public key line (who or what the key is; default user@host, as ssh-keygen's)")
	c.Flags().BoolVar(&force, "force", false, "replace FILE and FILE.pub if they exist")
	return c
}

// defaultComment is a public key line's comment when -C is not given:
// user@host, as ssh-keygen writes, or as much of it as this host tells.
func defaultComment() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	switch {
	case name != "" && host != "":
		return name + "@" + host
	case name != "":
		return name
	}
	return host
}

// newPSK is 32 random bytes in base64: a key file's content.
func newPSK() (string, error) {
	b := make([]byte, pskBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// reloadAuthorizedKeys re-reads --authorized-keys at SIGHUP and applies
// it: the links of the keys it no longer lists are closed. A file that
// does not parse changes nothing.
func reloadAuthorizedKeys(log *slog.Logger, o *options, node *sockmux.Peer) {
	if o.authKeys == "" {
		return
	}
	ak, err := identity.LoadAuthorizedKeys(o.authKeys)
	if err != nil {
		log.Error("SIGHUP: authorized keys not reloaded; the ones read before still apply", "err", err)
		return
	}
	p := node.Policies()
	if p.AuthorizedKeys.Equal(ak) {
		return
	}
	p.AuthorizedKeys = ak
	node.SetPolicies(p)
	log.Info("SIGHUP: authorized keys reloaded", "file", o.authKeys, "keys", ak.Len())
}
