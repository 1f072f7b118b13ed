package speaker

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/healthcheck"
	"github.com/bgplb/bgplb/speaker/plan"
)

// probe is one health check target and the Service (its index in the
// snapshot) and family it speaks for.
type probe struct {
	svc    int
	ipv6   bool
	target healthcheck.Target
}

// healthPorts are the healthCheckNodePorts of the Services that have one
// (LoadBalancer with externalTrafficPolicy Local: the API server
// allocates it).
func healthPorts(svcs []corev1.Service) map[lbmodel.Key]uint16 {
	out := map[lbmodel.Key]uint16{}
	for i := range svcs {
		s := &svcs[i]
		if p := s.Spec.HealthCheckNodePort; p > 0 && p < 65536 {
			out[lbmodel.KeyOf(s)] = uint16(p)
		}
	}
	return out
}

// healthProbes are the probes a snapshot calls for: for each Local Service
// with a healthCheckNodePort, one per family it has an address of and an
// endpoint on this node of, at this node's first address of that family
// (kube-proxy listens on every node address of its family, or on those
// --nodeport-addresses names, the primary ones by default). A Service
// without a local endpoint is not announced from here whatever the probe
// says, and is not probed.
func healthProbes(node string, addrs []netip.Addr, ports map[lbmodel.Key]uint16, svcs []plan.Service) []probe {
	var out []probe
	for i := range svcs {
		s := &svcs[i]
		port, ok := ports[s.Key]
		if !ok || s.TrafficPolicy != lbmodel.Local {
			continue
		}
		eps := s.Endpoints.On(node)
		for _, v6 := range []bool{false, true} {
			na, ok := firstOfFamily(addrs, v6)
			if !ok || !hasFamily(s.Addresses, v6) || (v6 && eps.IPv6 == 0) || (!v6 && eps.IPv4 == 0) {
				continue
			}
			out = append(out, probe{svc: i, ipv6: v6, target: healthcheck.Target{Service: s.Key, Addr: netip.AddrPortFrom(na, port)}})
		}
	}
	return out
}

func firstOfFamily(addrs []netip.Addr, v6 bool) (netip.Addr, bool) {
	for _, a := range addrs {
		if a.Is6() == v6 {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func hasFamily(addrs []netip.Addr, v6 bool) bool {
	_, ok := firstOfFamily(addrs, v6)
	return ok
}

// applyHealth hands the probes the snapshot calls for to the prober and
// writes its verdicts into the snapshot's Services.
func (s *Speaker) applyHealth(node *corev1.Node, svcs []corev1.Service, snap *plan.Snapshot) {
	if s.hc == nil {
		return
	}
	var addrs []netip.Addr
	if node != nil {
		addrs = nodeAddrs(node)
	}
	probes := healthProbes(s.o.NodeName, addrs, healthPorts(svcs), snap.Services)
	targets := make([]healthcheck.Target, len(probes))
	for i, p := range probes {
		targets[i] = p.target
	}
	s.hc.Set(targets)
	for _, p := range probes {
		h := &snap.Services[p.svc].HealthCheck
		if p.ipv6 {
			h.IPv6 = s.hc.Reason(p.target)
		} else {
			h.IPv4 = s.hc.Reason(p.target)
		}
	}
}

// healthCollector reads the prober's counters at scrape time.
type healthCollector struct {
	stats                        func() healthcheck.Stats
	targets, probes, transitions *prometheus.Desc
}

func newHealthCollector(stats func() healthcheck.Stats) *healthCollector {
	return &healthCollector{stats: stats,
		targets: prometheus.NewDesc("bgplb_speaker_healthcheck_targets",
			"kube-proxy health checks this node probes (the healthCheckNodePort of an externalTrafficPolicy Local Service with a local endpoint, per family), by state: pending (no answer yet), up, down (the Service is withheld from this node).", []string{"state"}, nil),
		probes: prometheus.NewDesc("bgplb_speaker_healthcheck_probes_total",
			"Probes of kube-proxy health checks, by result: pass, fail, refused (nothing listens: a pass, the endpoints decide).", []string{"result"}, nil),
		transitions: prometheus.NewDesc("bgplb_speaker_healthcheck_transitions_total",
			"Changes of a kube-proxy health check's state, by the state entered (up, down).", []string{"to"}, nil),
	}
}

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.targets
	ch <- c.probes
	ch <- c.transitions
}

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, s := range []healthcheck.State{healthcheck.Pending, healthcheck.Up, healthcheck.Down} {
		ch <- prometheus.MustNewConstMetric(c.targets, prometheus.GaugeValue, float64(st.Targets[s]), s.String())
	}
	ch <- prometheus.MustNewConstMetric(c.probes, prometheus.CounterValue, float64(st.Passed), "pass")
	ch <- prometheus.MustNewConstMetric(c.probes, prometheus.CounterValue, float64(st.Failed), "fail")
	ch <- prometheus.MustNewConstMetric(c.probes, prometheus.CounterValue, float64(st.Refused), "refused")
	ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(st.Rises), "up")
	ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(st.Falls), "down")
}
