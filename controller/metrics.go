package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgplb/bgplb/controller/allocator"
)

// metrics are the reconciler's own counters; the per-pool gauges are read
// from the allocator when scraped (see Collect), so they cannot drift from
// it.
type metrics struct {
	allocErrors *prometheus.CounterVec // by reason
	allocations prometheus.Counter
	releases    prometheus.Counter

	poolAddrs *prometheus.Desc
	services  *prometheus.Desc
	orphans   *prometheus.Desc
}

func newMetrics() *metrics {
	return &metrics{
		allocErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bgplb_controller_allocation_errors_total",
			Help: "Service requests that could not be met, by reason."}, []string{"reason"}),
		allocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bgplb_controller_addresses_assigned_total", Help: "Addresses given to Services."}),
		releases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bgplb_controller_addresses_released_total", Help: "Addresses Services gave up."}),
		poolAddrs: prometheus.NewDesc("bgplb_controller_pool_addresses",
			"A pool's addresses by family and state (assigned, available, held down after release); IPv6 counts saturate at 2^64-1.",
			[]string{"pool", "family", "state"}, nil),
		services: prometheus.NewDesc("bgplb_controller_services",
			"LoadBalancer Services served, by whether their request is met.", []string{"state"}, nil),
		orphans: prometheus.NewDesc("bgplb_controller_orphaned_addresses",
			"Assigned addresses that no pool covers any more.", nil, nil),
	}
}

// Register adds the controller's metrics to reg.
func (r *Reconciler) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{r.m.allocErrors, r.m.allocations, r.m.releases, r} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Describe implements prometheus.Collector.
func (r *Reconciler) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.m.poolAddrs
	ch <- r.m.services
	ch <- r.m.orphans
}

// Collect implements prometheus.Collector.
func (r *Reconciler) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	stats := r.alloc.Stats(time.Now())
	held := r.alloc.Len()
	waiting := len(r.waiting)
	orphans := len(r.alloc.Orphans())
	r.mu.Unlock()
	for _, s := range stats {
		fam := "ipv4"
		if s.Family == allocator.IPv6 {
			fam = "ipv6"
		}
		for _, v := range []struct {
			state string
			n     uint64
		}{{"assigned", s.Assigned}, {"available", s.Available}, {"hold_down", s.HoldDown}} {
			ch <- prometheus.MustNewConstMetric(r.m.poolAddrs, prometheus.GaugeValue, float64(v.n), s.Pool, fam, v.state)
		}
	}
	ch <- prometheus.MustNewConstMetric(r.m.services, prometheus.GaugeValue, float64(held), "allocated")
	ch <- prometheus.MustNewConstMetric(r.m.services, prometheus.GaugeValue, float64(waiting), "unsatisfied")
	ch <- prometheus.MustNewConstMetric(r.m.orphans, prometheus.GaugeValue, float64(orphans))
}
