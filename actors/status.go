package actors

// A Node's counters and the status snapshot sockmux status and /metrics show.

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Stats are a Node's counters. The exported ones are those other packages
// read (sockmux's metrics and demo, the cluster tests); the rest are the
// package's own, and Status carries most of them.
type Stats struct {
	StreamsOpened atomic.Int64
	StreamsClosed atomic.Int64
	BytesIn       atomic.Int64 // payload bytes received from the peer
	BytesOut      atomic.Int64 // payload bytes sent to the peer
	// Spliced counts streams handed in process to one of this node's own
	// pooled reverse forwards, instead of dialling its address (splice.go).
	Spliced atomic.Int64

	linksUp        atomic.Int64
	droppedFrames  atomic.Int64 // frames for unknown or ended streams
	dialFailures   atomic.Int64
	maxQueuedBytes atomic.Int64 // high-water mark of one stream's unwritten bytes
	// maxSendHeld is the high-water mark of what one link held for
	// sending: granted to its readers, or queued for a carrier.
	maxSendHeld atomic.Int64
	// droppedDatagrams counts UDP datagrams dropped: larger than a frame,
	// beyond a stream's credit, or with no link or room to queue them.
	droppedDatagrams atomic.Int64
	// refusals counts OPENs and BINDs this side refused (policy, limits).
	refusals atomic.Int64
	// reconnects counts links that came up again after going down.
	reconnects atomic.Int64
	// creditStalls counts the times a stream's reader had to wait for the
	// peer's credit.
	creditStalls atomic.Int64
	// resent counts frames sent again because the carrier they went out
	// on died or stalled before the peer acknowledged them.
	resent atomic.Int64
	// carrierStalls counts carriers taken out of the choice because they
	// delivered nothing for a while.
	carrierStalls atomic.Int64
	// resumes counts links resumed after losing their last carrier.
	resumes atomic.Int64
	// byForward counts the connections each forward accepted, by its
	// listen address.
	byForward sync.Map // string -> *atomic.Int64
}

// forwardConns is how many connections the forward listening on bind has
// accepted.
func (s *Stats) forwardConns(bind string) int64 {
	if v, ok := s.byForward.Load(bind); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (s *Stats) countForward(bind string) {
	v, _ := s.byForward.LoadOrStore(bind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// Stats are the node's counters.
func (n *Node) Stats() *Stats { return &n.env.stats }

// LinkStatus is one link as its Link actor sees it.
type LinkStatus struct {
	Peer string `json:"peer"`
	// Addr is, on the dialling side, the address the link dials: with a
	// failover list (Addrs, in order), the one in use.
	Addr  string   `json:"addr,omitempty"`
	Addrs []string `json:"addrs,omitempty"`
	// Name is the name= of the peer's authorized key, which Peer then
	// is too; PeerKey is the key the peer showed (identity links).
	Name          string        `json:"name,omitempty"`
	PeerKey       string        `json:"peer_key,omitempty"`
	Up            bool          `json:"up"`
	Role          string        `json:"role"`
	Authenticated bool          `json:"authenticated"`
	RTT           time.Duration `json:"rtt_ns"`
	Streams       int           `json:"streams_open"`
	Carriers      int           `json:"carriers"`
	Resuming      bool          `json:"resuming,omitempty"`
	// CarrierBytesIn is, per carrier, oldest first, the bytes of
	// sequenced frames that arrived on it (CapSeq links): how the peer
	// striped the link.
	CarrierBytesIn []uint64  `json:"carrier_bytes_in,omitempty"`
	Since          time.Time `json:"since,omitzero"`
	// PerCarrier is each carrier, oldest first, as the Link and its
	// Scheduler see it (the dashboard's table); none while resuming.
	PerCarrier []CarrierStatus `json:"per_carrier,omitempty"`
	// Remotes are this side's -R, in order, with the peer's answers in
	// the link's session (none while it is down); Reverse is where this
	// side listens for the peer's -R: "ADDR", "ADDR/udp", "ADDR pool NAME".
	Remotes []RemoteStatus `json:"remotes,omitempty"`
	Reverse []string       `json:"reverse,omitempty"`
}

// RemoteStatus is one of this side's -R on a link: what it asks the peer
// to listen on, and the peer's answer (neither yet: both empty).
type RemoteStatus struct {
	Bind      string `json:"bind"`
	Target    string `json:"target"`
	Listening string `json:"listening,omitempty"` // where the peer listens
	Refused   string `json:"refused,omitempty"`   // the peer's reason
}

// CarrierStatus is one carrier of a link.
type CarrierStatus struct {
	Local string `json:"local"` // this side's address of the connection
	// RTT is the least round trip its PINGs measured (0: none yet).
	RTT time.Duration `json:"rtt_ns"`
	// BytesIn is the bytes of sequenced frames that arrived on it,
	// BytesSent those put on it, and InFlight what of BytesSent the peer
	// has not acknowledged (CapSeq links; 0 otherwise).
	BytesIn   uint64 `json:"bytes_in"`
	BytesSent uint64 `json:"bytes_sent"`
	InFlight  uint64 `json:"in_flight"`
	// Stalled is a carrier that delivered nothing for a while although it
	// had bytes to deliver: the Scheduler gives it nothing until it does.
	Stalled bool `json:"stalled,omitempty"`
}

// ForwardStatus is one forward.
type ForwardStatus struct {
	Listen string `json:"listen"`
	Conns  int64  `json:"connections"`
	// Kind is what listens: "local" (a -L), "udp" (a -L of datagrams),
	// "dynamic" (a -D) or "peer-remote" (a -R the peer asked this side to
	// listen for).
	Kind string `json:"kind"`
}

// Status is a snapshot of a node for sockmux status and metrics.
type Status struct {
	Links            []LinkStatus    `json:"links"`
	Forwards         []ForwardStatus `json:"forwards"`
	BytesIn          int64           `json:"bytes_in"`
	BytesOut         int64           `json:"bytes_out"`
	StreamsOpened    int64           `json:"streams_opened"`
	StreamsClosed    int64           `json:"streams_closed"`
	Refusals         int64           `json:"refusals"`
	Reconnects       int64           `json:"reconnects"`
	CreditStalls     int64           `json:"credit_stalls"`
	DroppedDatagrams int64           `json:"dropped_datagrams"`
	DialFailures     int64           `json:"dial_failures"`
	// Resent, CarrierStalls and Resumes are the striping counters of
	// Stats.
	Resent        int64 `json:"frames_resent"`
	CarrierStalls int64 `json:"carrier_stalls"`
	Resumes       int64 `json:"resumes"`
	// Spliced is Stats.Spliced: streams handed in process to a pool here.
	Spliced int64 `json:"spliced,omitempty"`
}

// Status asks every link for its state (waiting up to a second for each)
// and reads the counters.
func (n *Node) Status() Status {
	st := &n.env.stats
	s := Status{
		BytesIn: st.BytesIn.Load(), BytesOut: st.BytesOut.Load(),
		StreamsOpened: st.StreamsOpened.Load(), StreamsClosed: st.StreamsClosed.Load(),
		Refusals: st.refusals.Load(), Reconnects: st.reconnects.Load(), CreditStalls: st.creditStalls.Load(),
		DroppedDatagrams: st.droppedDatagrams.Load(), DialFailures: st.dialFailures.Load(),
		Resent: st.resent.Load(), CarrierStalls: st.carrierStalls.Load(), Resumes: st.resumes.Load(),
		Spliced: st.Spliced.Load(),
	}
	n.mu.Lock()
	for i, b := range n.fwdBinds {
		kind := "local"
		switch {
		case strings.HasPrefix(b, "D:"):
			kind = "dynamic"
		case strings.HasSuffix(b, "/udp"):
			kind = "udp"
		}
		s.Forwards = append(s.Forwards, ForwardStatus{Listen: n.fwdAddrs[i].String(), Conns: st.forwardConns(b), Kind: kind})
	}
	n.mu.Unlock()
	for _, r := range n.env.reverseList() {
		s.Forwards = append(s.Forwards, ForwardStatus{Listen: r.ln.String(), Conns: st.forwardConns(ForwardKey(r.fwd)), Kind: "peer-remote"})
	}
	n.env.mu.Lock()
	var futs []*actor.Future
	for _, pid := range n.env.linkPIDs {
		futs = append(futs, n.env.sys.Root.RequestFuture(pid, &statusReq{}, time.Second))
	}
	n.env.mu.Unlock()
	for _, f := range futs {
		if r, err := f.Result(); err == nil {
			if ls, ok := r.(*LinkStatus); ok {
				s.Links = append(s.Links, *ls)
			}
		}
	}
	return s
}
