package fib

import (
	"path/filepath"
	"testing"
)

// TestRestartMovesRoutes restarts the FIB under a changed metric, table,
// protocol or next hop mode: the routes of the previous run are moved to
// the new configuration (replaced in place or installed before the old one
// goes), none is lost, none is left behind, and a route of another
// protocol is never touched.
func TestRestartMovesRoutes(t *testing.T) {
	routes := []Route{
		route("203.0.113.1/32", "198.51.100.2"),
		route("203.0.113.2/32", "198.51.100.2", "198.51.100.3"),
		route("2001:db8:100::1/128", "2001:db8::2"),
	}
	tests := []struct {
		name        string
		first, next Config
	}{
		{"metric", Config{NextHopObjects: NextHopOn}, Config{NextHopObjects: NextHopOn, Metric: 30}},
		{"metric-inline", Config{NextHopObjects: NextHopOff}, Config{NextHopObjects: NextHopOff, Metric: 30}},
		{"table", Config{NextHopObjects: NextHopOn}, Config{NextHopObjects: NextHopOn, Table: 100}},
		{"protocol", Config{NextHopObjects: NextHopOn}, Config{NextHopObjects: NextHopOn, Protocol: 200}},
		{"to-inline", Config{NextHopObjects: NextHopOn}, Config{NextHopObjects: NextHopOff}},
		{"to-objects", Config{NextHopObjects: NextHopOff}, Config{NextHopObjects: NextHopOn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNS(t)
			state := filepath.Join(t.TempDir(), "fib.state")
			ns.ip(t, "route", "add", "203.0.113.50/32", "via", "198.51.100.4", "proto", "static", "metric", "20")
			tt.first.StateFile, tt.next.StateFile = state, state
			first := ns.open(t, tt.first)
			if _, err := first.Apply(testCtx(t), Diff(nil, routes)); err != nil {
				t.Fatal(err)
			}
			first.Close()
			next := ns.open(t, tt.next)
			checkKernel(t, ns, next, routes)
			old, nw := first.cfg, next.cfg
			if old.Table != nw.Table || old.Metric != nw.Metric || old.Protocol != nw.Protocol {
				if left := ns.ipRoutes(t, old.Table, "bgp", old.Metric); len(left) != 0 {
					t.Errorf("routes of the previous configuration left: %v", left)
				}
			}
			if st := next.Stats(); st.Stale != len(routes) || st.MovingOld {
				t.Errorf("stats %+v: want %d stale routes, nothing left to move", st, len(routes))
			}
			if out := ns.ip(t, "route", "show", "203.0.113.50/32"); out == "" {
				t.Errorf("the static route was touched")
			}
			// The moved routes are the daemon's: the grace time ends them.
			if _, err := next.EndGrace(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			checkKernel(t, ns, next, nil)
		})
	}
}
