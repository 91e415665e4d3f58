package main

// The Prometheus metrics of a running node or daemon, and the dashboard
// beside them.

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sockmux/sockmux/internal/acceptloop"
	"github.com/sockmux/sockmux/internal/dashboard"
	"github.com/sockmux/sockmux/internal/ratelog"
)

// metrics exports every link's figures to Prometheus, read at scrape time.
type metrics struct{ d *daemon }

func (m metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mLinkUp, mRTT, mOpen, mBytesIn, mBytesOut, mOpened, mRefused, mReconn, mStalls, mDropped, mFwdConns, mShareUp, mShareCl, mShareDr} {
		ch <- d
	}
}

func (m metrics) Collect(ch chan<- prometheus.Metric) {
	r := m.d.report()
	for _, sh := range r.Shares {
		up := 0.0
		if sh.Stats.UpstreamUp {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(mShareUp, prometheus.GaugeValue, up, sh.Name)
		ch <- prometheus.MustNewConstMetric(mShareCl, prometheus.GaugeValue, float64(len(sh.Stats.Clients)), sh.Name)
		ch <- prometheus.MustNewConstMetric(mShareDr, prometheus.CounterValue, float64(sh.Stats.Dropped), sh.Name)
	}
	for _, l := range r.Links {
		s := l.Status
		for _, p := range s.Links {
			up := 0.0
			if p.Up {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(mLinkUp, prometheus.GaugeValue, up, l.Name, p.Peer)
			ch <- prometheus.MustNewConstMetric(mRTT, prometheus.GaugeValue, p.RTT.Seconds(), l.Name, p.Peer)
			ch <- prometheus.MustNewConstMetric(mOpen, prometheus.GaugeValue, float64(p.Streams), l.Name, p.Peer)
		}
		for d, v := range map[*prometheus.Desc]int64{mBytesIn: s.BytesIn, mBytesOut: s.BytesOut, mOpened: s.StreamsOpened,
			mRefused: s.Refusals, mReconn: s.Reconnects, mStalls: s.CreditStalls, mDropped: s.DroppedDatagrams} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l.Name)
		}
		for _, f := range s.Forwards {
			ch <- prometheus.MustNewConstMetric(mFwdConns, prometheus.CounterValue, float64(f.Conns), l.Name, f.Listen, f.Kind)
		}
	}
}

// metricsServer is the metrics address's server; Close also stops the
// dashboard's sampling.
type metricsServer struct {
	*http.Server
	dash *dashboard.Dashboard
}

func (s *metricsServer) Close() error {
	s.dash.Close()
	return s.Server.Close()
}

// serveMetrics serves /metrics on addr (sockmux's figures, and the Go
// runtime's and the process's), and the dashboard at /.
func (d *daemon) serveMetrics(addr string) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics{d}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	dash := dashboard.New(dashboard.Options{Status: func() any { return d.report() }, Counters: d.byteCounters})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", dash)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// http.Server rides out EMFILE itself, but gives up on ENOBUFS and
	// ENOMEM; the wrapper waits out every error but the closing.
	go srv.Serve(acceptloop.New(ln, acceptloop.Options{Log: d.log, Limit: ratelog.New(0), Attrs: []any{"accepting", "metrics", "listen", ln.Addr().String()}}))
	d.log.Info("metrics listening", "addr", ln.Addr().String(), "dashboard", "http://"+ln.Addr().String()+"/")
	return &metricsServer{Server: srv, dash: dash}, nil
}

// byteCounters are every link's byte counters, for the dashboard's charts.
func (d *daemon) byteCounters() []dashboard.Counter {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs := make([]dashboard.Counter, 0, len(d.links))
	for name, rl := range d.links {
		st := rl.node.Stats()
		cs = append(cs, dashboard.Counter{Name: name, In: st.BytesIn.Load(), Out: st.BytesOut.Load()})
	}
	return cs
}

var (
	mLinkUp   = prometheus.NewDesc("sockmux_link_up", "1 while the link to the peer is up.", []string{"link", "peer"}, nil)
	mRTT      = prometheus.NewDesc("sockmux_link_rtt_seconds", "Last measured round trip (PING/PONG).", []string{"link", "peer"}, nil)
	mOpen     = prometheus.NewDesc("sockmux_link_streams_open", "Streams open on the link.", []string{"link", "peer"}, nil)
	mBytesIn  = prometheus.NewDesc("sockmux_bytes_received_total", "Stream payload bytes received from peers.", []string{"link"}, nil)
	mBytesOut = prometheus.NewDesc("sockmux_bytes_sent_total", "Stream payload bytes sent to peers.", []string{"link"}, nil)
	mOpened   = prometheus.NewDesc("sockmux_streams_opened_total", "Streams opened, both ways.", []string{"link"}, nil)
	mRefused  = prometheus.NewDesc("sockmux_refusals_total", "OPENs and BINDs refused by policy or limits.", []string{"link"}, nil)
	mReconn   = prometheus.NewDesc("sockmux_reconnects_total", "Links that came up again after going down.", []string{"link"}, nil)
	mStalls   = prometheus.NewDesc("sockmux_credit_stalls_total", "Times a stream waited for the peer's credit.", []string{"link"}, nil)
	mDropped  = prometheus.NewDesc("sockmux_dropped_datagrams_total", "UDP datagrams dropped.", []string{"link"}, nil)
	mFwdConns = prometheus.NewDesc("sockmux_forward_connections_total", "Connections a forward accepted.", []string{"link", "listen", "kind"}, nil)
	mShareUp  = prometheus.NewDesc("sockmux_share_upstream_up", "1 while the shared upstream is connected.", []string{"share"}, nil)
	mShareCl  = prometheus.NewDesc("sockmux_share_clients", "Clients connected to the share.", []string{"share"}, nil)
	mShareDr  = prometheus.NewDesc("sockmux_share_dropped_bytes_total", "Upstream bytes dropped for slow clients.", []string{"share"}, nil)
)
