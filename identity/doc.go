// Package identity holds sockmux's public-key identities and the files
// that name them: a private key file (written by sockmux keygen), a
// public key line ("sockmux-x25519 BASE64 comment"), an authorized keys
// file (the peers a listener admits, each with its permissions) and a
// known hosts file (the listeners a dialler has pinned). See
// docs/SECURITY.md §7 and PROTOCOL.md §5.4.
package identity
