package router

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/bgp/session"
)

// TestPeerMetrics: the per-peer series, read from the peers at scrape
// time, are those the metric children were: UPDATEs for every peer the
// daemon knows, prefixes for the peers registered with the RIB.
func TestPeerMetrics(t *testing.T) {
	cfg := mustParse(t, "asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n")
	d := New(cfg, Options{Log: slog.New(slog.DiscardHandler)})
	add := func(addr string, updates uint64, ribID uint32, received, accepted int64) {
		a := netip.MustParseAddr(addr)
		p := &peer{d: d, addr: a, label: a.String(), dynamic: true}
		p.sess = session.New(sessionConfig(cfg, a, 64513, Timers{}, true), p, nil)
		p.updatesIn.Store(updates)
		p.ribID.Store(ribID)
		p.received.Store(received)
		p.accepted.Store(accepted)
		d.peers[a] = p
	}
	add("198.51.100.11", 7, 1, 4, 3)
	add("198.51.100.12", 2, 0, 0, 0) // not established
	want := map[string]float64{
		`bgplb_router_prefixes_accepted{peer="198.51.100.11"}`:            3,
		`bgplb_router_prefixes_received{peer="198.51.100.11"}`:            4,
		`bgplb_router_updates_total{direction="in",peer="198.51.100.11"}`: 7,
		`bgplb_router_updates_total{direction="in",peer="198.51.100.12"}`: 2,
	}
	fams, err := d.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "bgplb_router_prefixes_") && f.GetName() != "bgplb_router_updates_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			got[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
