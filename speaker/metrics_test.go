package speaker

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/speaker/announce"
)

func TestCollectorBFD(t *testing.T) {
	c := newCollector(func() []announce.PeerStatus { return nil },
		func() uint64 { return 2 },
		func() map[string]bfd.State { return map[string]bfd.State{"router": bfd.Up} })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			}
		}
	}
	if got["bgplb_speaker_bfd_state/router"] != 3 || got["bgplb_speaker_bfd_teardowns_total"] != 2 || len(got) != 2 {
		t.Errorf("metrics %v", got)
	}
}
