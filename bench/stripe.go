package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/sockmux/sockmux/actors"
	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
)

// The striping workload: one stream over a link of several carriers, each
// across an emulated path of its own with its own rate cap (a provider's
// per-flow cap), measured at the receiver in either direction.

// StripePath is the emulated path of a striped link: Carriers connections,
// each across its own emulated path (Delay one way, Rate bytes per second
// per direction), but the last, capped at SlowRate when that is set.
type StripePath struct {
	Carriers int
	Delay    time.Duration
	Rate     int64
	SlowRate int64
}

// Rates is each carrier's cap, in dial order.
func (p StripePath) Rates() []int64 {
	n := max(p.Carriers, 1)
	rates := make([]int64, n)
	for i := range rates {
		rates[i] = p.Rate
	}
	if p.SlowRate > 0 {
		rates[n-1] = p.SlowRate
	}
	return rates
}

// Capacity is the sum of the carriers' caps: what a stream striped across
// all of them could at best reach.
func (p StripePath) Capacity() int64 {
	var sum int64
	for _, r := range p.Rates() {
		sum += r
	}
	return sum
}

// Striped is a sockmux tunnel whose link stripes over several carriers,
// each across an emulated path: two nodes in this process, the far one
// serving a listener, the near one dialling Carriers carriers with a -L
// forward to the target (which the far node dials).
type Striped struct {
	far, near *actors.Node
	emus      []*Emulator
	addr      string
}

// StripeSettle bounds how long NewStriped waits for every carrier to join.
const StripeSettle = 10 * time.Second

// NewStriped builds a striped tunnel to target across p and returns once
// both nodes see the link up with all its carriers.
func NewStriped(target string, p StripePath) (*Striped, error) {
	n := max(p.Carriers, 1)
	if p.SlowRate > 0 && n < 2 {
		return nil, errors.New("striped tunnel: a slow carrier needs at least two")
	}
	discard := slog.New(slog.DiscardHandler)
	s := &Striped{}
	far, err := actors.NewNode(actors.Config{Logger: discard})
	if err != nil {
		return nil, err
	}
	s.far = far
	ln, err := carriers.Listen("127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, err
	}
	far.Serve(ln)
	// One emulator for each run of equal caps (the dialer sends each
	// carrier across the one its place in the dial order falls in).
	d := &SplitDialer{}
	rates := p.Rates()
	for i := 0; i < len(rates); {
		j := i + 1
		for j < len(rates) && rates[j] == rates[i] {
			j++
		}
		e, err := NewEmulator(ln.Addr().String(), p.Delay, rates[i])
		if err != nil {
			s.Close()
			return nil, err
		}
		s.emus = append(s.emus, e)
		d.Add(e.Addr(), j-i)
		i = j
	}
	near, err := actors.NewNode(actors.Config{Logger: discard, Carriers: n,
		Forwards: []forward.Forward{{Bind: "127.0.0.1:0", Target: target}}})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.near = near
	near.Connect(d)
	if err := settleLink(near, far, n); err != nil {
		s.Close()
		return nil, err
	}
	s.addr = near.ForwardAddrs()[0].String()
	return s, nil
}

// settleLink waits until both nodes have the link up with n carriers. A
// node tells of a carrier joining nowhere but in its status, so it is
// polled.
func settleLink(near, far *actors.Node, n int) error {
	deadline := time.Now().Add(StripeSettle)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		a, okA := upLink(near)
		b, okB := upLink(far)
		if okA && okB && a.Carriers == n && b.Carriers == n && !a.Resuming && !b.Resuming {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("striped tunnel: the link did not come up with %d carriers in %v (near %+v, far %+v)", n, StripeSettle, a, b)
		}
		<-tick.C
	}
}

// upLink is a node's link that is up, if it has one.
func upLink(n *actors.Node) (actors.LinkStatus, bool) {
	for _, l := range n.Status().Links {
		if l.Up {
			return l, true
		}
	}
	return actors.LinkStatus{}, false
}

// Addr is where clients connect: the near node's forward.
func (s *Striped) Addr() string { return s.addr }

// Near and Far are the two nodes: the dialling one, with the forward, and
// the serving one, which dials the target.
func (s *Striped) Near() *actors.Node { return s.near }

// Far is the serving node (see Near).
func (s *Striped) Far() *actors.Node { return s.far }

// Close closes the near node first (it says GOAWAY across the paths), then
// the paths, then the far node.
func (s *Striped) Close() {
	if s.near != nil {
		s.near.Close()
	}
	for _, e := range s.emus {
		e.Close()
	}
	if s.far != nil {
		s.far.Close()
	}
}

// SplitDialer is a carriers.Dialer that shares a link's carriers between
// several addresses, each given a quota: a dial goes to the first address
// with fewer live connections than its quota (the first address when all
// are full), so a carrier that dropped is replaced on the path it was on.
// The connections are returned as they are (*net.TCPConn, so the carrier
// writer keeps its vectored writes); a closed one is noticed at the next
// dial.
type SplitDialer struct {
	mu     sync.Mutex
	groups []dialGroup
}

type dialGroup struct {
	addr  string
	quota int
	live  []*net.TCPConn
}

// Add gives addr a quota of connections.
func (d *SplitDialer) Add(addr string, quota int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.groups = append(d.groups, dialGroup{addr: addr, quota: quota})
}

// Dial makes one carrier connection to the first address short of its
// quota.
func (d *SplitDialer) Dial(ctx context.Context) (net.Conn, error) {
	d.mu.Lock()
	if len(d.groups) == 0 {
		d.mu.Unlock()
		return nil, errors.New("split dialer: no address")
	}
	g := 0
	for i := range d.groups {
		d.groups[i].live = slices.DeleteFunc(d.groups[i].live, closed)
	}
	for i := range d.groups {
		if len(d.groups[i].live) < d.groups[i].quota {
			g = i
			break
		}
	}
	addr := d.groups[g].addr
	d.mu.Unlock()
	nd := net.Dialer{Timeout: carriers.DialTimeout}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	d.mu.Lock()
	d.groups[g].live = append(d.groups[g].live, tc)
	d.mu.Unlock()
	return tc, nil
}

// Live is how many of each address's connections are open, in the order
// they were added.
func (d *SplitDialer) Live() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := make([]int, len(d.groups))
	for i := range d.groups {
		d.groups[i].live = slices.DeleteFunc(d.groups[i].live, closed)
		n[i] = len(d.groups[i].live)
	}
	return n
}

// String names the addresses, for logs.
func (d *SplitDialer) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := "split:"
	for i, g := range d.groups {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%s×%d", g.addr, g.quota)
	}
	return s
}

// closed tells whether c was closed here (by its owner): its descriptor
// is gone. A connection the peer closed stays live until its owner closes
// it, as a carrier's does once its reader sees the end.
func closed(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return true
	}
	return rc.Control(func(uintptr) {}) != nil
}

// Source is the server of the striping workload's far→near direction: it
// sends each connection Sink frames (BlockSize payloads) until the client
// ends its side (a half-close, or any byte), then the end frame and the
// payload bytes it sent (8 bytes, big-endian), and closes.
type Source struct{ *server }

// NewSource starts a Source on loopback.
func NewSource() (*Source, error) {
	srv, err := newServer()
	if err != nil {
		return nil, err
	}
	s := &Source{server: srv}
	s.serve(s.handle)
	return s, nil
}

func (s *Source) handle(c net.Conn) {
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		var b [1]byte
		_, _ = c.Read(b[:])
	}()
	defer func() {
		s.forget(c) // wakes the reader if it still waits
		<-stop
	}()
	block := make([]byte, BlockSize)
	for i := range block {
		block[i] = byte(i * 7)
	}
	var hdr [frameHeader]byte
	var n int64
	for seq := uint32(0); ; seq++ {
		select {
		case <-stop:
			binary.BigEndian.PutUint32(hdr[:], 0)
			binary.BigEndian.PutUint32(hdr[4:], seq)
			var count [8]byte
			binary.BigEndian.PutUint64(count[:], uint64(n))
			bufs := net.Buffers{hdr[:], count[:]}
			_, _ = bufs.WriteTo(c)
			return
		default:
		}
		binary.BigEndian.PutUint32(hdr[:], BlockSize)
		binary.BigEndian.PutUint32(hdr[4:], seq)
		binary.BigEndian.PutUint32(block, seq)
		binary.BigEndian.PutUint32(block[BlockSize-4:], seq)
		bufs := net.Buffers{hdr[:], block}
		if _, err := bufs.WriteTo(c); err != nil {
			return
		}
		n += BlockSize
	}
}

// Pull reads a Source's frames through addr, checking each (as a Sink
// does), until stop is closed; then it ends its side, reads to the end
// frame and checks the source's count. It returns the payload bytes
// received. rx, a Sink that need not serve, counts them as they arrive
// (Received, Await).
func Pull(addr string, rx *Sink, stop <-chan struct{}) (int64, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case <-stop:
			_ = c.(*net.TCPConn).CloseWrite()
		case <-done:
		}
	}()
	defer func() {
		close(done)
		<-ended
	}()
	r := bufio.NewReaderSize(c, sinkBuffer)
	n, err := rx.drain(r)
	if err != nil {
		return n, fmt.Errorf("pulling (%d bytes received): %w", n, err)
	}
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return n, fmt.Errorf("reading the source's count (%d bytes received): %w", n, err)
	}
	if sent := int64(binary.BigEndian.Uint64(b[:])); sent != n {
		return n, fmt.Errorf("source sent %d bytes, received %d", sent, n)
	}
	return n, nil
}

// StripeResult is one striped measurement.
type StripeResult struct {
	// MBps is the stream's throughput at the receiver, MB/s.
	MBps float64
	// CarrierBytes is, per carrier of the receiving node, the bytes of
	// sequenced frames that arrived on it over the whole run (warm-up
	// included), smallest first (a node does not say which carrier is
	// which).
	CarrierBytes []uint64
	// Resent and Stalls are the sending node's counters: frames sent
	// again, carriers taken for stalled.
	Resent, Stalls int64
}

// MeasureStripe runs one stream through a striped tunnel across p, near
// to far (a client pushing to a Sink) or, with down, far to near (a
// client pulling from a Source). After warm (the windows growing) it
// measures what arrives at the receiver (amount.Count bytes, or for
// amount.Duration). Every frame is checked on arrival and the byte count
// against the sender's at the end.
func MeasureStripe(p StripePath, down bool, warm time.Duration, amount Amount, probe Probe) (StripeResult, error) {
	var res StripeResult
	var (
		rx       *Sink
		target   string
		closeSrv func()
	)
	if down {
		src, err := NewSource()
		if err != nil {
			return res, err
		}
		rx, target, closeSrv = &Sink{}, src.Addr(), src.Close
	} else {
		sink, err := NewSink()
		if err != nil {
			return res, err
		}
		rx, target, closeSrv = sink, sink.Addr(), sink.Close
	}
	defer closeSrv()
	tun, err := NewStriped(target, p)
	if err != nil {
		return res, err
	}
	defer tun.Close()
	sender, receiver := tun.Near(), tun.Far()
	if down {
		sender, receiver = receiver, sender
	}
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		var err error
		if down {
			_, err = Pull(tun.Addr(), rx, stop)
		} else {
			_, err = PushUntil(tun.Addr(), 1, stop, nil)
		}
		errc <- err
	}()
	finish := func() error {
		close(stop)
		return <-errc
	}
	got, elapsed, err := measureRun(rx, warm, amount, probe, errc)
	if err != nil {
		return res, err
	}

	if l, ok := upLink(receiver); ok {
		res.CarrierBytes = slices.Sorted(slices.Values(l.CarrierBytesIn))
	}
	st := sender.Status()
	res.Resent, res.Stalls = st.Resent, st.CarrierStalls
	if err := finish(); err != nil {
		return res, err
	}
	res.MBps = float64(got) / elapsed.Seconds() / MB
	return res, nil
}
