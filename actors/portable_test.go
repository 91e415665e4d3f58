package actors

import (
	"testing"
)

// TestPortableIO runs the end-to-end bodies with the portable path on both
// nodes, over every carrier: their sockets, local and carrier, are TCP
// sockets that would have taken the raw path.
func TestPortableIO(t *testing.T) {
	Portable(t)
	for _, tc := range []struct {
		name string
		body func(*testing.T, string)
	}{{"transfer", testTransferBothWays}, {"half-close", testHalfClose}, {"many streams", testManyStreams}} {
		t.Run(tc.name, func(t *testing.T) { eachCarrier(t, tc.body) })
	}
}
