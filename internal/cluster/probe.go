package cluster

// What the static provider's members send each other (static.go): a probe
// and its answer. Like the directory's messages (codec.go), each is a
// wrapperspb.BytesValue holding a small JSON document:
//
//	{"op": "probe", "members": [MEMBER], ...}           the prober
//	{"op": "live", "members": [MEMBER, MEMBER...], ...}  the answerer, then
//	                                                     the others it
//	                                                     counts live
//
// and, in both, what the sender's protoactor makes of the membership
// (rejoin.go says what for):
//
//	"counted": ["10.0.0.1:7946", ...]  the members its protoactor counts
//	"expelled": "ID"                   the id it counted out at the
//	                                   receiver's address, if any
//
//	MEMBER = {"id": "...", "host": "10.0.0.1", "port": 7946,
//	          "kinds": ["sockmux-directory"], "link": "10.0.0.1:7947"}
//
// They are not protoactor's cluster.Member and cluster.ClusterTopology
// (what the probes were before) because those have no room for the link:
// the address of the member's own sockmux listener for the other hubs'
// links (Config.Link), which the prober must know to judge the member's
// health over that link (health.go). A hub of an older sockmux, which
// probes with cluster.Member, gets no answer from a newer one and gives
// none: the hubs of a cluster are upgraded together (docs/CLUSTER.md).

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The probe documents' kinds (the "op" field).
const (
	opProbe = "probe" // the prober, asking for the answerer's view
	opLive  = "live"  // the answer
)

// maxKinds bounds a member's kinds in a probe document: a hub hosts one
// (the directory's).
const maxKinds = 16

// probeMember is one member as the static provider knows it: protoactor's
// cluster.Member, and where other hubs dial its hub links.
type probeMember struct {
	ID    string   `json:"id"`
	Host  string   `json:"host"`
	Port  int32    `json:"port"`
	Kinds []string `json:"kinds,omitempty"`
	// Link is the member's Config.Link: its listener for the other hubs'
	// sockmux links ("" for a member with none).
	Link string `json:"link,omitempty"`
}

// member is m as protoactor's member list takes it.
func (m probeMember) member() *cluster.Member {
	return &cluster.Member{Id: m.ID, Host: m.Host, Port: m.Port, Kinds: m.Kinds}
}

// address is m's control-plane address, as cluster.Member.Address makes
// it: the key of the provider's peers.
func (m probeMember) address() string { return m.member().Address() }

// check reports what is wrong with m, if anything.
func (m probeMember) check() error {
	switch {
	case m.ID == "" || m.Host == "":
		return fmt.Errorf("%w: a member without an id or a host", ErrMalformed)
	case len(m.ID) > maxField || len(m.Host) > maxField || len(m.Link) > maxField:
		return fmt.Errorf("%w: a member's field is longer than %d bytes", ErrMalformed, maxField)
	case m.Port <= 0 || m.Port > 65535:
		return fmt.Errorf("%w: a member's port %d", ErrMalformed, m.Port)
	case len(m.Kinds) > maxKinds:
		return fmt.Errorf("%w: a member of %d kinds, at most %d", ErrMalformed, len(m.Kinds), maxKinds)
	}
	for _, k := range m.Kinds {
		if k == "" || len(k) > maxField {
			return fmt.Errorf("%w: a member's kind %.40q", ErrMalformed, k)
		}
	}
	return nil
}

// probeDoc is one probe or answer.
type probeDoc struct {
	Op      string        `json:"op"`
	Members []probeMember `json:"members"`
	// Counted is the control-plane addresses of the members the sender's
	// protoactor counts, itself included.
	Counted []string `json:"counted,omitempty"`
	// Expelled is the protoactor id the sender counted out at the
	// receiver's address ("" for none): if it is the receiver's own, the
	// receiver is not a member there and never will be again under it.
	Expelled string `json:"expelled,omitempty"`
}

// encodeProbe wraps d for protoactor's remote.
func encodeProbe(d *probeDoc) *wrapperspb.BytesValue {
	b, err := json.Marshal(d)
	if err != nil {
		// Only strings and ints: Marshal cannot fail on them.
		panic(fmt.Sprintf("cluster: encoding a probe: %v", err))
	}
	return wrapperspb.Bytes(b)
}

// decodeProbe reads a probe document another member sent, of kind op,
// within the limits: it names at least one member (the sender first),
// each well formed.
func decodeProbe(b []byte, op string) (*probeDoc, error) {
	if len(b) > maxMessage {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(b), maxMessage)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var p probeDoc
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: data after the document", ErrMalformed)
	}
	if p.Op != op {
		return nil, fmt.Errorf("%w: op %.40q, want %q", ErrMalformed, p.Op, op)
	}
	if len(p.Members) == 0 || len(p.Members) > maxEntries {
		return nil, fmt.Errorf("%w: %d members, 1 to %d", ErrMalformed, len(p.Members), maxEntries)
	}
	for _, m := range p.Members {
		if err := m.check(); err != nil {
			return nil, err
		}
	}
	if len(p.Counted) > maxEntries || len(p.Expelled) > maxField {
		return nil, fmt.Errorf("%w: %d members counted or an id of %d bytes", ErrMalformed, len(p.Counted), len(p.Expelled))
	}
	for _, a := range p.Counted {
		if a == "" || len(a) > maxField {
			return nil, fmt.Errorf("%w: a counted member's address %.40q", ErrMalformed, a)
		}
	}
	return &p, nil
}
