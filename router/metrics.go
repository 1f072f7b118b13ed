package router

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bgplb/bgplb/bgp/rib"
	"github.com/bgplb/bgplb/fib"
	"github.com/bgplb/bgplb/internal/metricsrv"
)

// Metrics are the router's Prometheus metrics, on a registry of their own
// (no global state).
type Metrics struct {
	Registry *prometheus.Registry

	// The prefixes received and accepted and the UPDATEs by peer are
	// read from the peers at scrape time (peerCollector); rejections,
	// rare, have children of their own.
	PrefixesRejected *prometheus.CounterVec // by peer, reason
	SessionsRefused  *prometheus.CounterVec // by reason
	FIBOps           *prometheus.CounterVec // by op (add, replace, delete)
	FIBErrors        prometheus.Counter
	FIBBatchSeconds  prometheus.Histogram
	// BFDTeardowns counts BGP sessions reset because BFD went down.
	BFDTeardowns prometheus.Counter
	// GRRestarts counts peers' graceful restarts by how they ended.
	GRRestarts *prometheus.CounterVec
}

// NewMetrics builds and registers the router's metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		PrefixesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bgplb_router_prefixes_rejected_total", Help: "Announcements refused by the import guards."}, []string{"peer", "reason"}),
		SessionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bgplb_router_sessions_refused_total", Help: "Connections from dynamic neighbors refused by the session limits."}, []string{"reason"}),
		FIBOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bgplb_router_fib_operations_total", Help: "Kernel route operations."}, []string{"op"}),
		FIBErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bgplb_router_fib_errors_total", Help: "Kernel route operations that failed."}),
		FIBBatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bgplb_router_fib_batch_seconds", Help: "Time to apply one netlink batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}),
		BFDTeardowns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bgplb_router_bfd_teardowns_total", Help: "BGP sessions reset because their BFD session went down."}),
		GRRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bgplb_router_gr_restarts_total",
			Help: "Graceful restarts of peers whose routes were kept, by how they ended: end_of_rib, restart_time, stale_time, not_preserved, reset, disabled."},
			[]string{"outcome"}),
	}
	m.Registry.MustRegister(m.PrefixesRejected, m.SessionsRefused,
		m.FIBOps, m.FIBErrors, m.FIBBatchSeconds, m.BFDTeardowns, m.GRRestarts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ServeMetrics serves /metrics and profiles on addr until ctx ends.
func ServeMetrics(ctx context.Context, addr string, m *Metrics, log *slog.Logger) error {
	ln, err := metricsrv.Listen(addr)
	if err != nil {
		return err
	}
	return metricsrv.Serve(ctx, ln, m.Registry, log, nil)
}

// sessionsDesc describes the sessions-by-state gauge, computed at scrape
// time from the sessions themselves so it can never drift.
var sessionsDesc = prometheus.NewDesc("bgplb_router_sessions", "BGP sessions by FSM state.", []string{"state"}, nil)

// sessionCollector reports the number of sessions in each state.
type sessionCollector struct{ states func() map[string]int }

func (c sessionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- sessionsDesc }

func (c sessionCollector) Collect(ch chan<- prometheus.Metric) {
	for state, n := range c.states() {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n), state)
	}
}

// The per-peer series, read at scrape time from the peers themselves: a
// metric child per peer and series would cost some 1.5 KB a peer, with
// thousands of mostly idle dynamic neighbours.
var (
	prefixesReceivedDesc = prometheus.NewDesc("bgplb_router_prefixes_received", "Prefixes received from a peer and held.", []string{"peer"}, nil)
	prefixesAcceptedDesc = prometheus.NewDesc("bgplb_router_prefixes_accepted", "Prefixes from a peer that passed the import guards.", []string{"peer"}, nil)
	updatesDesc          = prometheus.NewDesc("bgplb_router_updates_total", "UPDATE messages by peer and direction.", []string{"peer", "direction"}, nil)
	bfdStateDesc         = prometheus.NewDesc("bgplb_router_bfd_state",
		"State of a peer's BFD session, as RFC 5880 numbers it: 0 AdminDown, 1 Down, 2 Init, 3 Up.", []string{"peer"}, nil)
	grStaleDesc = prometheus.NewDesc("bgplb_router_gr_stale_paths",
		"Paths of a restarting peer kept as stale: not yet sent again by its new session.", []string{"peer"}, nil)
)

// peerCollector reports the per-peer series: the UPDATEs received for
// every peer the daemon knows, the prefixes for those whose session is
// established and registered with the RIB.
type peerCollector struct{ d *Daemon }

func (c peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- prefixesReceivedDesc
	ch <- prefixesAcceptedDesc
	ch <- updatesDesc
	ch <- bfdStateDesc
	ch <- grStaleDesc
}

func (c peerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.d.peerList() {
		ch <- prometheus.MustNewConstMetric(updatesDesc, prometheus.CounterValue, float64(p.updatesIn.Load()), p.label, "in")
		if st, ok := p.bfdStatus(); ok {
			ch <- prometheus.MustNewConstMetric(bfdStateDesc, prometheus.GaugeValue, float64(st.State), p.label)
		}
		if stale := rib.PeerID(p.staleID.Load()); stale != 0 {
			if n, _, ok := c.d.rib.PeerTotals(stale); ok {
				ch <- prometheus.MustNewConstMetric(grStaleDesc, prometheus.GaugeValue, float64(n), p.label)
			}
		}
		if p.ribID.Load() == 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(prefixesReceivedDesc, prometheus.GaugeValue, float64(p.received.Load()), p.label)
		ch <- prometheus.MustNewConstMetric(prefixesAcceptedDesc, prometheus.GaugeValue, float64(p.accepted.Load()), p.label)
	}
}

// The FIB's own counters, read at scrape time from fib.Stats so they can
// never drift from what it did.
var (
	fibRepairsDesc = prometheus.NewDesc("bgplb_router_fib_repairs_total",
		"Kernel routes written again: restored after a deletion behind the router's back, or a foreign change reverted.", nil, nil)
	fibRetriesDesc = prometheus.NewDesc("bgplb_router_fib_retries_total", "Rounds of writing failed kernel routes again.", nil, nil)
	fibResyncsDesc = prometheus.NewDesc("bgplb_router_fib_resyncs_total", "Full comparisons of the kernel with the RIB.", nil, nil)
	fibOverrunDesc = prometheus.NewDesc("bgplb_router_fib_monitor_overruns_total", "Kernel notifications lost to a full socket (each leads to a full comparison).", nil, nil)
	fibRoutesDesc  = prometheus.NewDesc("bgplb_router_fib_routes",
		"Routes the router keeps in the kernel (those of a previous run it adopted included; not those without a usable next hop).", nil, nil)
	fibPendingDesc = prometheus.NewDesc("bgplb_router_fib_pending_routes", "Routes the kernel does not hold as the RIB wants right now.", nil, nil)
	fibStaleDesc   = prometheus.NewDesc("bgplb_router_fib_stale_routes", "Routes of a previous run waiting for a peer or the grace time.", nil, nil)
	fibNoHopDesc   = prometheus.NewDesc("bgplb_router_fib_unusable_routes", "Routes with no usable next hop, so not in the kernel.", nil, nil)
	fibDegradeDesc = prometheus.NewDesc("bgplb_router_fib_degraded_gateways", "Gateways left out of kernel routes because the kernel cannot use them.", nil, nil)
	fibFlushDesc   = prometheus.NewDesc("bgplb_router_fib_flushed_routes_total",
		"Kernel routes deleted with their gateway's nexthop object (a peer gone), not one by one.", nil, nil)
	fibModeDesc = prometheus.NewDesc("bgplb_router_fib_ecmp_mode",
		"1 for how ECMP routes are balanced: resilient or mpath nexthop groups, or inline multipath (hash-threshold).", []string{"mode"}, nil)
	fibRekeyDesc = prometheus.NewDesc("bgplb_router_fib_groups_changed_in_place_total",
		"Resilient nexthop groups changed in place because every route through them moved to one new set (a node left or joined): flows on the other nodes kept their buckets.", nil, nil)
)

// fibCollector reports fib.Stats.
type fibCollector struct{ stats func() (fib.Stats, bool) }

func (c fibCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{fibRoutesDesc, fibRepairsDesc, fibRetriesDesc, fibResyncsDesc, fibOverrunDesc, fibPendingDesc, fibStaleDesc, fibNoHopDesc, fibDegradeDesc, fibFlushDesc, fibModeDesc, fibRekeyDesc} {
		ch <- d
	}
}

func (c fibCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.stats()
	if !ok {
		return
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	gauge(fibRoutesDesc, s.Routes-s.Unusable)
	counter(fibRepairsDesc, s.Repairs)
	counter(fibRetriesDesc, s.Retries)
	counter(fibResyncsDesc, s.Resyncs)
	counter(fibOverrunDesc, s.Overruns)
	gauge(fibPendingDesc, s.Pending)
	gauge(fibStaleDesc, s.Stale)
	gauge(fibNoHopDesc, s.Unusable)
	gauge(fibDegradeDesc, s.Degraded)
	counter(fibFlushDesc, s.Flushed)
	ch <- prometheus.MustNewConstMetric(fibModeDesc, prometheus.GaugeValue, 1, s.Groups)
	counter(fibRekeyDesc, s.Rekeyed)
}
