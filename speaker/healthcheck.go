package speaker

import (
	"net/netip"
	"slices"

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

// healthProbes are the probes a snapshot may call for: for each Local
// Service with a healthCheckNodePort, one per family it has an address of
// and an endpoint on this node of, at this node's first address of that
// family (kube-proxy listens on every node address of its family, or on
// those --nodeport-addresses names, the primary ones by default). A
// Service without a local endpoint is not announced from here whatever the
// probe says, and is not probed; of the rest, the plan says which it
// would announce but for the probe ([Speaker.setProbes]).
func healthProbes(node string, addrs []netip.Addr, ports map[lbmodel.Key]uint16, svcs []plan.Service) []probe {
	var out []probe
	for i := range svcs {
		s := &svcs[i]
		port, ok := ports[s.Key]
		if !ok || s.TrafficPolicy != lbmodel.Local {
			continue
		}
		// A node whose local pods are all terminating still serves them
		// (plan.Service.LocalFallback): its probe goes on, the 503 "0
		// local endpoints" counting as a pass as under the Service's
		// fallback, so that a kube-proxy gone unhealthy still withdraws.
		eps, lf := s.On(node), s.LocalFallback.On(node)
		for _, v6 := range []bool{false, true} {
			na, ok := firstOfFamily(addrs, v6)
			n, fallback := eps.IPv4, s.Fallback.IPv4 || lf.IPv4 > 0
			if v6 {
				n, fallback = eps.IPv6, s.Fallback.IPv6 || lf.IPv6 > 0
			}
			if !ok || !hasFamily(s.Addresses, v6) || n == 0 {
				continue
			}
			out = append(out, probe{svc: i, ipv6: v6, target: healthcheck.Target{Service: s.Key,
				Addr: netip.AddrPortFrom(na, port), Fallback: fallback}})
		}
	}
	return out
}

// firstOfFamily is the first global address of the family: kube-proxy
// does not serve on link-local ones, and a zone would not survive the
// Node object anyway.
func firstOfFamily(addrs []netip.Addr, v6 bool) (netip.Addr, bool) {
	for _, a := range addrs {
		if a.Is6() == v6 && !a.IsLinkLocalUnicast() {
			return a.WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

func hasFamily(addrs []netip.Addr, v6 bool) bool {
	for _, a := range addrs {
		if a.Unmap().Is6() == v6 {
			return true
		}
	}
	return false
}

// applyHealth writes the prober's verdicts on the probes the snapshot may
// call for into the snapshot's Services, and returns those probes. A probe
// the prober does not run yet has the verdict it would start with.
func (s *Speaker) applyHealth(node *corev1.Node, svcs []corev1.Service, snap *plan.Snapshot) []probe {
	if s.hc == nil {
		return nil
	}
	var addrs []netip.Addr
	if node != nil {
		addrs = nodeAddrs(node)
	}
	probes := healthProbes(s.o.NodeName, addrs, healthPorts(svcs), snap.Services)
	for _, p := range probes {
		h := &snap.Services[p.svc].HealthCheck
		v := plan.Verdict(s.hc.Verdict(p.target))
		if p.ipv6 {
			h.IPv6 = v
		} else {
			h.IPv4 = v
		}
	}
	return probes
}

// setProbes hands the prober the probes whose family the plan says the
// health check decides in: a node that could not announce a Service
// anyway neither probes it nor blames its health check. While the Node is
// unknown nothing changes: the first Set decides which targets start up.
func (s *Speaker) setProbes(node *corev1.Node, probes []probe, svcs []plan.Service, res plan.Result) {
	if s.hc == nil || node == nil {
		return
	}
	s.hc.Set(decidingTargets(probes, svcs, res))
}

// decidingTargets are the targets of the probes whose family the plan
// says the health check decides in.
func decidingTargets(probes []probe, svcs []plan.Service, res plan.Result) []healthcheck.Target {
	var out []healthcheck.Target
	for _, p := range probes {
		i, ok := slices.BinarySearchFunc(res.Services, svcs[p.svc].Key, func(d plan.ServiceDecision, k lbmodel.Key) int {
			return d.Key.Compare(k)
		})
		if !ok {
			continue
		}
		if res.Services[i].HealthChecked.Of(p.target.Addr.Addr()) {
			out = append(out, p.target)
		}
	}
	return out
}

// healthCollector reads the prober's counters at scrape time.
type healthCollector struct {
	stats                        func() healthcheck.Stats
	targets, probes, transitions *prometheus.Desc
}

func newHealthCollector(stats func() healthcheck.Stats) *healthCollector {
	return &healthCollector{stats: stats,
		targets: prometheus.NewDesc("bgplb_speaker_healthcheck_targets",
			"kube-proxy health checks this node probes (the healthCheckNodePort of an externalTrafficPolicy Local Service this node would announce but for the probe, per family), by state: pending (new, no pass yet: withheld), up, down (withheld).", []string{"state"}, nil),
		probes: prometheus.NewDesc("bgplb_speaker_healthcheck_probes_total",
			"Probes of kube-proxy health checks, by result: pass, fail, refused (nothing listens: keeps an up check up, else neutral).", []string{"result"}, nil),
		transitions: prometheus.NewDesc("bgplb_speaker_healthcheck_transitions_total",
			"Changes of a kube-proxy health check's state, by the state entered: up (from down; a new check's first pass is not counted), down.", []string{"to"}, nil),
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
