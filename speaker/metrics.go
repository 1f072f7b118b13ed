package speaker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/speaker/announce"
)

// collector reads the announcer's status at scrape time, so the metrics
// cannot drift from the sessions.
type collector struct {
	status func() []announce.PeerStatus
	// bfdTeardowns is how many BGP sessions BFD reset, bfdStates the state
	// of each peer's BFD session that runs; nil: no BFD.
	bfdTeardowns func() uint64
	bfdStates    func() map[string]bfd.State

	sessions, prefixes, updates, flaps, teardowns, bfdState *prometheus.Desc
}

func newCollector(status func() []announce.PeerStatus, bfdTeardowns func() uint64, bfdStates func() map[string]bfd.State) *collector {
	return &collector{
		status: status, bfdTeardowns: bfdTeardowns, bfdStates: bfdStates,
		bfdState: prometheus.NewDesc("bgplb_speaker_bfd_state",
			"State of the BFD session with the peer (RFC 5880: 0 AdminDown, 1 Down, 2 Init, 3 Up); absent when none runs.", []string{"peer"}, nil),
		teardowns: prometheus.NewDesc("bgplb_speaker_bfd_teardowns_total",
			"BGP sessions reset because their BFD session went down.", nil, nil),
		sessions: prometheus.NewDesc("bgplb_speaker_sessions_up",
			"1 when the BGP session with the peer is Established.", []string{"peer"}, nil),
		prefixes: prometheus.NewDesc("bgplb_speaker_prefixes_announced",
			"Prefixes the peer currently has from this node.", []string{"peer"}, nil),
		updates: prometheus.NewDesc("bgplb_speaker_updates_sent_total",
			"UPDATE messages sent to the peer.", []string{"peer"}, nil),
		flaps: prometheus.NewDesc("bgplb_speaker_session_flaps_total",
			"Times the session with the peer went down.", []string{"peer"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sessions
	ch <- c.prefixes
	ch <- c.updates
	ch <- c.flaps
	ch <- c.teardowns
	ch <- c.bfdState
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if c.bfdTeardowns != nil {
		ch <- prometheus.MustNewConstMetric(c.teardowns, prometheus.CounterValue, float64(c.bfdTeardowns()))
	}
	if c.bfdStates != nil {
		for peer, st := range c.bfdStates() {
			ch <- prometheus.MustNewConstMetric(c.bfdState, prometheus.GaugeValue, float64(st), peer)
		}
	}
	for _, p := range c.status() {
		up := 0.0
		if p.State == session.Established {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, up, p.Name)
		ch <- prometheus.MustNewConstMetric(c.prefixes, prometheus.GaugeValue, float64(p.Announced), p.Name)
		ch <- prometheus.MustNewConstMetric(c.updates, prometheus.CounterValue, float64(p.UpdatesOut), p.Name)
		ch <- prometheus.MustNewConstMetric(c.flaps, prometheus.CounterValue, float64(p.Flaps), p.Name)
	}
}
