package cluster

// What members send each other about the directory. protoactor's remote
// carries protobuf messages only; rather than add a protoc step, each
// message is a wrapperspb.BytesValue (a well-known type every protobuf
// runtime has) holding a JSON document:
//
//	{"op": "sync", "hub": "10.0.0.1:7946", "version": N, "entries": [ENTRY...]}
//	{"op": "list"}
//	{"op": "entries", "entries": [ENTRY...],      the grain's answer and push
//	 "versions": {"10.0.0.1:7946": N, ...}}       every hub's registration held
//	{"op": "error", "error": "TEXT"}             the grain's refusal
//
//	ENTRY = {"bind": "tcp/*:8080", "pool": "web", "hub": "10.0.0.1:7946",
//	         "link": "10.0.0.1:7000", "addr": "10.0.0.1:8080", "members": 2}
//
// A sync's version numbers the hub's registrations (table.go): the grain
// and the members keep each hub's newest. Every entry of an "entries"
// document belongs to a hub its versions list; a hub listed without
// entries holds none. A hub of an older sockmux, whose syncs have no
// version and whose decoder refuses the versions field, cannot talk to a
// newer one: the hubs of a cluster are upgraded together.
//
// JSON because the documents are small, rare (one per membership change
// and per change of a hub's binds) and read by people debugging; limits
// below bound what one costs to decode.

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The message kinds (the "op" field).
const (
	opSync    = "sync"    // replace every entry of Hub with Entries, unless a newer Version is held
	opList    = "list"    // ask for the directory
	opEntries = "entries" // the directory, answered or pushed
	opError   = "error"   // a request the grain refused
)

// Limits on a decoded message, far above a real deployment's (a few
// hubs, tens of binds) and low enough that a message costs little.
const (
	maxMessage    = 1 << 20 // bytes of JSON
	maxEntries    = 4096    // entries in one message
	maxField      = 256     // bytes of any string field
	maxPoolMember = 1 << 16 // Entry.Members
)

// Entry is one hub holding one reverse forward: the directory's row.
type Entry struct {
	// Bind is the forward as the edge asked for it: "tcp/" or "udp/"
	// and the address, e.g. "tcp/*:8080".
	Bind string `json:"bind"`
	// Pool names the pool of edges holding it ("" for a lone edge).
	Pool string `json:"pool,omitempty"`
	// Hub is the holding hub: the address of its control plane, which is
	// unique among live members.
	Hub string `json:"hub"`
	// Link is where other hubs dial the holding hub's sockmux listener
	// for the link that carries this bind's streams.
	Link string `json:"link"`
	// Addr is the address the holding hub listens on for it (what a
	// stream another hub carries there asks the holder to dial).
	Addr string `json:"addr,omitempty"`
	// Members is how many of the pool's edges hold it at that hub.
	Members int `json:"members"`
	// Door, for a pooled UDP bind, is where a stream another hub carries
	// there asks the holder to send a flow: a loopback address whose
	// flows go to the holder's own edges only (actors.ReverseBind.Door).
	// A hub from before UDP pools sends none; its bind is bridged as an
	// unpooled one.
	Door string `json:"door,omitempty"`
}

// key identifies an entry: one per bind per hub.
func (e Entry) key() string { return e.Hub + "\x00" + e.Bind }

// check reports what is wrong with e, if anything.
func (e Entry) check() error {
	switch {
	case e.Bind == "":
		return fmt.Errorf("%w: no bind", ErrEntry)
	case e.Hub == "":
		return fmt.Errorf("%w: %s: no hub", ErrEntry, e.Bind)
	case len(e.Bind) > maxField || len(e.Pool) > maxField || len(e.Hub) > maxField || len(e.Link) > maxField || len(e.Addr) > maxField || len(e.Door) > maxField:
		return fmt.Errorf("%w: %.40s: a field is longer than %d bytes", ErrEntry, e.Bind, maxField)
	case e.Members < 0 || e.Members > maxPoolMember:
		return fmt.Errorf("%w: %s: member count %d out of range", ErrEntry, e.Bind, e.Members)
	}
	return nil
}

// message is one control-plane document about the directory.
type message struct {
	Op      string  `json:"op"`
	Hub     string  `json:"hub,omitempty"`
	Entries []Entry `json:"entries,omitempty"`
	Error   string  `json:"error,omitempty"`
	// Version numbers a sync: a hub's registrations, newest highest.
	Version uint64 `json:"version,omitempty"`
	// Versions is, in a directory, the version of each hub's
	// registration it holds.
	Versions map[string]uint64 `json:"versions,omitempty"`
}

// encode wraps m for protoactor's remote.
func encode(m *message) *wrapperspb.BytesValue {
	b, err := json.Marshal(m)
	if err != nil {
		// Only strings and ints: Marshal cannot fail on them.
		panic(fmt.Sprintf("cluster: encoding a message: %v", err))
	}
	return wrapperspb.Bytes(b)
}

// decode reads a message another member sent, within the limits.
func decode(b []byte) (*message, error) {
	if len(b) > maxMessage {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(b), maxMessage)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var m message
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: data after the document", ErrMalformed)
	}
	switch m.Op {
	case opSync, opList, opEntries, opError:
	default:
		return nil, fmt.Errorf("%w: unknown op %.40q", ErrMalformed, m.Op)
	}
	if len(m.Entries) > maxEntries || len(m.Versions) > maxEntries {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrMalformed, len(m.Entries), maxEntries)
	}
	if len(m.Hub) > maxField || len(m.Error) > 4*maxField {
		return nil, fmt.Errorf("%w: a field is too long", ErrMalformed)
	}
	if m.Op == opSync && m.Hub == "" {
		return nil, fmt.Errorf("%w: sync without a hub", ErrMalformed)
	}
	if m.Op == opSync && m.Version == 0 {
		return nil, fmt.Errorf("%w: sync without a version (a hub of an older sockmux?)", ErrMalformed)
	}
	for hub := range m.Versions {
		if hub == "" || len(hub) > maxField {
			return nil, fmt.Errorf("%w: a version for hub %.40q", ErrMalformed, hub)
		}
	}
	for _, e := range m.Entries {
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if m.Op == opSync && e.Hub != m.Hub {
			return nil, fmt.Errorf("%w: sync of hub %s holds an entry of hub %.40s", ErrMalformed, m.Hub, e.Hub)
		}
		if _, ok := m.Versions[e.Hub]; m.Op == opEntries && !ok {
			return nil, fmt.Errorf("%w: an entry of hub %.40s, which the directory gives no version", ErrMalformed, e.Hub)
		}
	}
	return &m, nil
}
