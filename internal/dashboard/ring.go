package dashboard

// The throughput history of one link.

import "time"

// sample is one interval's throughput, in bytes per second each way.
type sample struct {
	at      time.Time // the end of the interval
	in, out float64
}

// ring keeps a link's last samples in a fixed array, and the counters of
// the last reading to take the next one's rate from.
type ring struct {
	buf   []sample
	next  int // where the next sample goes
	n     int // samples kept, up to len(buf)
	based bool
	last  time.Time
	in    int64
	out   int64
}

func newRing(size int) *ring { return &ring{buf: make([]sample, size)} }

// add takes a reading of the counters at now. The first reading, and one
// whose counters went down (the link was restarted), only sets the
// baseline.
func (r *ring) add(now time.Time, in, out int64) {
	dt := now.Sub(r.last).Seconds()
	if r.based && dt > 0 && in >= r.in && out >= r.out {
		r.buf[r.next] = sample{at: now, in: float64(in-r.in) / dt, out: float64(out-r.out) / dt}
		r.next = (r.next + 1) % len(r.buf)
		r.n = min(r.n+1, len(r.buf))
	}
	if dt > 0 || !r.based {
		r.based, r.last, r.in, r.out = true, now, in, out
	}
}

// points are the samples, oldest first, as [unix ms, in, out].
func (r *ring) points() [][3]float64 {
	p := make([][3]float64, 0, r.n)
	for i := range r.n {
		s := r.buf[(r.next-r.n+i+len(r.buf))%len(r.buf)]
		p = append(p, [3]float64{float64(s.at.UnixMilli()), s.in, s.out})
	}
	return p
}
