// Package peernode lets the sockmux command reach the actors.Node under a
// sockmux.Peer, for the one product not yet built on the root package's
// API alone: the hub cluster's bridge (internal/cluster), which gives the
// node's pools other hubs' shares as actors.PoolPeer values whose links
// are nodes of its own. The root package sets Of when it is initialised.
package peernode

import "github.com/sockmux/sockmux/actors"

// Of is the node under a *sockmux.Peer (p of another type panics: a
// programming error, never input). It is set by package sockmux's init.
var Of func(p any) *actors.Node
