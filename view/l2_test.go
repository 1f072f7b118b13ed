package view

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

type l2Source struct {
	fakeSource
	as []L2Address
}

func (s *l2Source) L2(context.Context) []L2Address { return s.as }

func TestL2View(t *testing.T) {
	since := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	src := &l2Source{as: []L2Address{
		{Address: netip.MustParseAddr("198.51.100.153"), Owner: "node1", Here: true, Since: since, Transitions: 2,
			Candidates: []string{"node1", "node2"}, Services: []string{"default/pihole"}, Interfaces: []string{"eth0"},
			Answered: 7, Gratuitous: 6},
		{Address: netip.MustParseAddr("2001:db8:51::1:53"), Owner: "node2", Candidates: []string{"node2", "node1"}},
		{Address: netip.MustParseAddr("198.51.100.154"), LastError: "no interface of this node has an address on the subnet of 198.51.100.154"},
	}}
	c := serveTest(t, src)
	got, err := c.L2(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Address != src.as[0].Address || !got[0].Here || !got[0].Since.Equal(since) ||
		!slices.Equal(got[0].Interfaces, []string{"eth0"}) || got[0].Gratuitous != 6 || got[2].LastError == "" {
		t.Fatalf("round trip: %+v", got)
	}
	var b strings.Builder
	if err := WriteL2(&b, got, since.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"Address", "*node1", "eth0", "node1,node2", "default/pihole", "(none)",
		"198.51.100.154: no interface of this node"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// A router answers no ARP: 501 with the reason.
	r := serveTest(t, &fakeSource{})
	if _, err := r.L2(context.Background()); err == nil || !strings.Contains(err.Error(), "L2 mode is the speaker's") {
		t.Fatalf("router: %v", err)
	}
}
