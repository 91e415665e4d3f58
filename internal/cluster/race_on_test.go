//go:build race

package cluster

import "testing"

// needNoRace skips a test that runs cluster members under the race
// detector: protoactor-go's cluster races with itself (each remote's
// Start sets gRPC's global logger while other members' servers read it;
// MemberList.members, disthash's rendezvous and the remote's block list
// are read without the locks their writers hold; every member of a
// process shuffles with one math/rand.Rand), which fails any test with
// two members in one process. None of the races reported is in this
// package's code or data: docs/CLUSTER.md ("protoactor-go's data races")
// lists each with its file and line. The tests without members (codec,
// TLS, config) run.
func needNoRace(t testing.TB) {
	t.Helper()
	t.Skip("protoactor-go's cluster has data races of its own (docs/CLUSTER.md: protoactor-go's data races)")
}
