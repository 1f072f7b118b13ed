package docs

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// TestDashboard: every query of the Grafana dashboard in deploy/grafana
// names metrics that exist (a renamed metric would leave a panel empty),
// and the dashboard shows sessions, announced prefixes, allocation and
// FIB operations, as an operator needs.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana/bgplb.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, role := range []string{"router", "speaker", "controller"} {
		for _, m := range roleMetrics(t, role) {
			known[m.name] = true
		}
	}
	used := map[string]bool{}
	name := regexp.MustCompile(`bgplb_[a-z0-9_]+`)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range name.FindAllString(q.Expr, -1) {
				used[m] = true
				if !known[m] {
					t.Errorf("panel %q queries %s, which no role exports", p.Title, m)
				}
			}
		}
	}
	for _, m := range []string{"bgplb_router_sessions", "bgplb_speaker_sessions_up", "bgplb_speaker_prefixes_announced",
		"bgplb_router_prefixes_accepted", "bgplb_controller_pool_addresses", "bgplb_router_fib_operations_total"} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}
