package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestMalformedBatchClosesOnlyItsStream: a control-plane peer whose
// message batch names a target that is not in it (protoactor's remote
// indexes it unchecked, and panics) gets its stream closed with
// InvalidArgument; the hub lives on and still serves its directory.
func TestMalformedBatchClosesOnlyItsStream(t *testing.T) {
	t.Parallel()
	m := startStatic(t, nil, testLogger(t))
	conn, err := grpc.Dial(m.ID(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, batch := range []*remote.MessageBatch{
		{Envelopes: []*remote.MessageEnvelope{{Target: 5}}},                                                                          // a target past the list
		{Targets: []*actor.PID{{Address: m.ID(), Id: "nobody"}}, Envelopes: []*remote.MessageEnvelope{{TypeId: 9, SerializerId: 7}}}, // a type and serializer past theirs
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		stream, err := remote.NewRemotingClient(conn).Receive(ctx)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if err := stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: batch}}); err != nil {
			cancel()
			t.Fatal(err)
		}
		_, err = stream.Recv()
		cancel()
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("batch %d: the stream ended with %v, want InvalidArgument", i, err)
		}
	}
	if err := m.Register(Entry{Bind: "tcp/*:8080"}); err != nil {
		t.Fatalf("the hub after the malformed batches: %v", err)
	}
	waitFor(t, m, "the entry registered after the malformed batches", holds(Entry{Bind: "tcp/*:8080", Hub: m.ID()}))
}
