// Package cluster owns a hub's membership of a sockmux hub cluster: the
// control plane that lets many hubs share the reverse forwards (-R) their
// edges asked for.
//
// It runs protoactor-go's cluster (package cluster, with disthash identity
// lookup) on an actor system of its own, apart from the data path's:
//
//   - membership comes from a cluster provider, chosen by name: "static"
//     (this package's, static.go: a list of seeds, each member probing the
//     others over the control plane (probe.go) and learning the members
//     they know, and, with a cluster key, holding a keyed sockmux link to
//     each member's hub-link address, whose liveness a probe needs too:
//     health.go), or protoactor's "etcd", "consul" and "k8s"
//     (providers.go);
//   - the control plane's traffic (protoactor's gRPC remote) is mutual TLS
//     1.3 with credentials derived from the cluster's key (tls.go), and
//     refused on a non-loopback address without one;
//   - the directory (directory.go) is one virtual actor (a grain) that
//     lists which hub holds which -R bind and for which pool: soft state,
//     which every hub registers again after each membership change, since
//     the grain moves to another member when the membership changes and
//     starts empty there; entries of a hub that left are dropped;
//   - Member (member.go) is the Go API the rest of sockmux uses: Start,
//     Register and Unregister this hub's entries, Watch the directory
//     (and WatchHubs the membership), Close;
//   - Bridge (bridge.go, bridge_pool.go) binds here what other hubs
//     hold: each TCP bind's pool here gets a share per holding hub
//     (actors.Node.SetPoolPeers), so connections spread over the pool's
//     edges wherever they are linked, carried to the holder over an
//     ordinary sockmux link (an actors.Node per peer hub, dialling
//     Entry.Link), one hop; so does each pooled UDP bind's
//     (SetUDPPoolPeers), a flow carried to the holder's door for it
//     (Entry.Door); a UDP bind of one edge is a forward to one holder;
//   - the directory keeps each hub's newest registration (table.go);
//   - a hub the others counted out (cut off past their failure window)
//     is told so by the static provider's probes (expel.go) and rejoins
//     in-process under a fresh protoactor id (rejoin.go), its protoactor
//     member being one incarnation (incarnation.go) of the Member, whose
//     entries, directory and watchers outlive it.
//
// Data never rides the control plane: hubs carry each other's streams
// over ordinary sockmux links, whose addresses the directory's entries
// name (Entry.Link). What travels between members is in codec.go:
// protobuf well-known wrappers (wrapperspb.BytesValue) carrying a small
// JSON document, so that no protoc step is needed.
//
// docs/CLUSTER.md has the design and a deployment.
package cluster
