package speaker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// l2Collector reads the L2 side at scrape time.
type l2Collector struct {
	m                                      *l2Mode
	owned, answered, gratuitous, dropped, takeovers *prometheus.Desc
}

func newL2Collector(m *l2Mode) *l2Collector {
	return &l2Collector{m: m,
		owned: prometheus.NewDesc("bgplb_speaker_l2_owned",
			"1 for each address this node owns in L2 mode (answers ARP or NDP for), by address.", []string{"address"}, nil),
		answered: prometheus.NewDesc("bgplb_speaker_l2_answers_total",
			"ARP requests and neighbour solicitations answered for the address since this node took it.", []string{"address", "interface"}, nil),
		gratuitous: prometheus.NewDesc("bgplb_speaker_l2_gratuitous_total",
			"Gratuitous ARPs and unsolicited neighbour advertisements sent for the address since this node took it.", []string{"address", "interface"}, nil),
		dropped: prometheus.NewDesc("bgplb_speaker_l2_dropped_total",
			"Answers and announcements for the address dropped because the interface's send buffer was full (since this node took it).", []string{"address", "interface"}, nil),
		takeovers: prometheus.NewDesc("bgplb_speaker_l2_takeovers_total",
			"Times this node took an address over in L2 mode.", nil, nil),
	}
}

func (c *l2Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.owned
	ch <- c.answered
	ch <- c.gratuitous
	ch <- c.dropped
	ch <- c.takeovers
}

func (c *l2Collector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	owned := c.m.owned
	c.m.mu.Unlock()
	for _, a := range owned {
		ch <- prometheus.MustNewConstMetric(c.owned, prometheus.GaugeValue, 1, a.String())
	}
	for _, st := range c.m.ann.Status() {
		ch <- prometheus.MustNewConstMetric(c.answered, prometheus.CounterValue, float64(st.Answered), st.Addr.String(), st.Interface)
		ch <- prometheus.MustNewConstMetric(c.gratuitous, prometheus.CounterValue, float64(st.Gratuitous), st.Addr.String(), st.Interface)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Dropped), st.Addr.String(), st.Interface)
	}
	ch <- prometheus.MustNewConstMetric(c.takeovers, prometheus.CounterValue, float64(c.m.takeovers.Load()))
}
