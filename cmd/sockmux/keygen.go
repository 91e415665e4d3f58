package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// pskBytes is how much randomness `keygen --psk` draws: 256 bits.
const pskBytes = 32

// errNoIdentities is keygen without --psk: public-key identities are not
// built yet.
var errNoIdentities = errors.New("only pre-shared keys can be made for now: use sockmux keygen --psk")

// keygenCmd prints a fresh pre-shared key.
func keygenCmd(stdout io.Writer) *cobra.Command {
	var psk bool
	c := &cobra.Command{
		Use:   "keygen --psk",
		Short: "Print a fresh random pre-shared key (32 random bytes, base64) for --key-file",
		Args:  cobra.NoArgs,
		Example: "  sockmux keygen --psk > sockmux.key && chmod 600 sockmux.key\n" +
			"  # copy sockmux.key to the other peer; both pass --key-file sockmux.key",
		RunE: func(*cobra.Command, []string) error {
			if !psk {
				return fmt.Errorf("%w: %w", errUsage, errNoIdentities)
			}
			k, err := newPSK()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, k)
			return err
		},
	}
	c.Flags().BoolVar(&psk, "psk", false, "make a pre-shared key (the key both peers' --key-file holds)")
	return c
}

// newPSK is 32 random bytes in base64: a key file's content.
func newPSK() (string, error) {
	b := make([]byte, pskBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
