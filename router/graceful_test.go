package router

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/fib"
)

// grNeg is a session that negotiated graceful restart for IPv4 and IPv6
// unicast, with restart time secs and the F bit as fwd; nil families: no
// capability from the peer.
func grNeg(secs uint16, fwd bool, fams ...wire.Family) session.Negotiated {
	n := session.Negotiated{PeerAS: 64512, PeerID: netip.MustParseAddr("198.51.100.11"),
		Families: []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast}}
	if fams != nil {
		g := &wire.GracefulRestart{Time: secs}
		for _, f := range fams {
			g.Families = append(g.Families, wire.GRFamily{Family: f, Forwarding: fwd})
		}
		n.GracefulRestart = g
	}
	return n
}

var (
	v4, v6 = wire.IPv4Unicast, wire.IPv6Unicast
	both   = []wire.Family{v4, v6}
	ceaseN = &session.NotificationError{Notification: wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseAdminReset}}
)

func TestGRKeep(t *testing.T) {
	on := GracefulRestart{Enabled: true, RestartTime: 60 * time.Second, StaleTime: time.Minute}
	gr := grNeg(120, true, v4, v6)
	short := grNeg(5, true, v4)
	zero := grNeg(0, true, v4)
	none := grNeg(0, false)
	tests := []struct {
		name   string
		cfg    GracefulRestart
		n      *session.Negotiated
		reason error
		hold   time.Duration
		fams   []wire.Family
		drop   []wire.Family
	}{
		{"TCP closed: kept for the capped restart time", on, &gr, io.EOF, 60 * time.Second, both, nil},
		{"peer asks for less than the cap; IPv6 not in its capability goes", on, &short, io.EOF, 5 * time.Second, []wire.Family{v4}, []wire.Family{v6}},
		{"restart time 0 keeps nothing", on, &zero, io.EOF, 0, nil, nil},
		{"no capability from the peer", on, &none, io.EOF, 0, nil, nil},
		{"helper off", GracefulRestart{RestartTime: time.Minute}, &gr, io.EOF, 0, nil, nil},
		{"a NOTIFICATION (no N bit)", on, &gr, ceaseN, 0, nil, nil},
		{"hold timer (no N bit)", on, &gr, session.ErrHoldTimerExpired, 0, nil, nil},
		{"our own shutdown", on, &gr, session.ErrShutdown, 0, nil, nil},
		{"never established", on, nil, io.EOF, 0, nil, nil},
	}
	for _, tc := range tests {
		hold, fams, drop := grKeep(tc.cfg, tc.n, tc.reason)
		if hold != tc.hold || !slices.Equal(fams, tc.fams) || !slices.Equal(drop, tc.drop) {
			t.Errorf("%s: grKeep = %v %v drop %v, want %v %v drop %v", tc.name, hold, fams, drop, tc.hold, tc.fams, tc.drop)
		}
	}
}

func TestGRResume(t *testing.T) {
	fwd, nofwd, v4only, none := grNeg(120, true, v4, v6), grNeg(120, false, v4, v6), grNeg(120, true, v4), grNeg(120, false)
	tests := []struct {
		name       string
		n          *session.Negotiated
		wait, drop []wire.Family
	}{
		{"F bit for both: both wait for End-of-RIB", &fwd, both, nil},
		{"no F bit: both go", &nofwd, nil, both},
		{"capability for IPv4 only: IPv6 goes", &v4only, []wire.Family{v4}, []wire.Family{v6}},
		{"no capability in the new OPEN", &none, nil, both},
		{"helper turned off", nil, nil, both},
	}
	for _, tc := range tests {
		wait, drop := grResume(both, tc.n)
		if !slices.Equal(wait, tc.wait) || !slices.Equal(drop, tc.drop) {
			t.Errorf("%s: wait %v drop %v, want %v %v", tc.name, wait, drop, tc.wait, tc.drop)
		}
	}
}

func TestEORComplete(t *testing.T) {
	n := grNeg(0, false)
	for _, tc := range []struct {
		eor  []wire.Family
		want bool
	}{{nil, false}, {[]wire.Family{v4}, false}, {[]wire.Family{v6, v4}, true}} {
		if got := eorComplete(&n, tc.eor); got != tc.want {
			t.Errorf("eorComplete(%v) = %v", tc.eor, got)
		}
	}
	if eorComplete(nil, both) {
		t.Error("a session that is down is complete")
	}
}

func TestGraceOver(t *testing.T) {
	a, b, c := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("198.51.100.13")
	set := func(as ...netip.Addr) map[netip.Addr]bool {
		m := map[netip.Addr]bool{}
		for _, x := range as {
			m[x] = true
		}
		return m
	}
	tests := []struct {
		name             string
		expected, synced map[netip.Addr]bool
		up               []netip.Addr
		want             bool
	}{
		{"all expected synced", set(a, b), set(a, b), []netip.Addr{a, b}, true},
		{"one expected missing", set(a, b), set(a), []netip.Addr{a}, false},
		{"an unexpected peer up, not synced", set(a), set(a), []netip.Addr{a, c}, false},
		{"an unexpected peer synced too", set(a), set(a, c), []netip.Addr{a, c}, true},
		{"nobody expected: the first synced peer ends it", set(), set(c), []netip.Addr{c}, true},
		{"nobody synced yet", set(), set(), nil, false},
		{"an expected peer synced, then went down", set(a), set(a), nil, true},
	}
	for _, tc := range tests {
		if got := graceOver(tc.expected, tc.synced, tc.up); got != tc.want {
			t.Errorf("%s: graceOver = %v", tc.name, got)
		}
	}
}

func TestExpectedPeers(t *testing.T) {
	cfg := mustParse(t, `asn: 64512
routerID: 198.51.100.1
neighbors: [{address: 203.0.113.250, peerASN: 64512}]
dynamicNeighbors: [{prefix: 198.51.100.0/24, peerASN: 64512}]
import: {prefixes: [203.0.113.0/24]}
`)
	a := netip.MustParseAddr
	old := []fib.Route{
		{Prefix: netip.MustParsePrefix("203.0.113.1/32"), NextHops: []fib.NextHop{{Addr: a("198.51.100.11")}, {Addr: a("198.51.100.12")}}},
		{Prefix: netip.MustParsePrefix("203.0.113.2/32"), NextHops: []fib.NextHop{{Addr: a("198.51.100.12")}, {Addr: a("192.168.1.1")}}},
	}
	got := expectedPeers(cfg, old)
	want := map[netip.Addr]bool{a("203.0.113.250"): true, a("198.51.100.11"): true, a("198.51.100.12"): true}
	if len(got) != len(want) {
		t.Fatalf("expected peers %v, want %v", got, want)
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("expected peers %v, want %v", got, want)
		}
	}
}

func TestParseGracefulRestart(t *testing.T) {
	c := mustParse(t, `asn: 64512
routerID: 198.51.100.1
gracefulRestart: {restartTime: 30s}
neighbors:
  - {address: 198.51.100.11, peerASN: 64512}
  - {address: 198.51.100.12, peerASN: 64512, gracefulRestart: {enabled: false}}
dynamicNeighbors:
  - {prefix: 198.51.100.128/25, peerASN: 64512, gracefulRestart: {staleTime: 20}}
import: {prefixes: [203.0.113.0/24]}
`)
	if want := (GracefulRestart{Enabled: true, RestartTime: 30 * time.Second, StaleTime: DefaultStaleTime}); c.GracefulRestart != want || c.Neighbors[0].GracefulRestart != want {
		t.Errorf("global %+v, neighbor %+v, want %+v", c.GracefulRestart, c.Neighbors[0].GracefulRestart, want)
	}
	if g := c.Neighbors[1].GracefulRestart; g.Enabled || g.RestartTime != 30*time.Second {
		t.Errorf("neighbor with enabled: false: %+v", g)
	}
	if g := c.DynamicNeighbors[0].GracefulRestart; !g.Enabled || g.StaleTime != 20*time.Second || g.RestartTime != 30*time.Second {
		t.Errorf("range: %+v", g)
	}
	d := mustParse(t, "asn: 1\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n")
	if d.GracefulRestart != (GracefulRestart{Enabled: true, RestartTime: DefaultRestartTime, StaleTime: DefaultStaleTime}) {
		t.Errorf("defaults: %+v", d.GracefulRestart)
	}
	base := "asn: 1\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"
	for _, tc := range []struct{ yaml, want string }{
		{"gracefulRestart: {restartTime: 0s}\n", "x.yaml:4: gracefulRestart.restartTime: 0s: must be between 1s and 1h8m15s"},
		{"gracefulRestart: {staleTime: 2h}\n", "x.yaml:4: gracefulRestart.staleTime: 2h0m0s: must be between 1s and 1h8m15s"},
		{"gracefulRestart: {enabled: maybe}\n", `x.yaml:4: gracefulRestart.enabled: "maybe" is not true or false`},
		{"neighbors: [{address: 198.51.100.11, peerASN: 1, gracefulRestart: {bogus: 1}}]\n", "x.yaml:4: neighbors[0].gracefulRestart.bogus: unknown key"},
	} {
		_, err := Parse("x.yaml", []byte(base+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// A reload that changes only gracefulRestart resets no session.
func TestPlanReloadGracefulRestart(t *testing.T) {
	const head = "asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"
	old := mustParse(t, head+"neighbors: [{address: 198.51.100.11, peerASN: 64512}]\ndynamicNeighbors: [{prefix: 198.51.100.128/25, peerASN: 64512}]\n")
	cur := mustParse(t, head+"gracefulRestart: {enabled: false}\nneighbors: [{address: 198.51.100.11, peerASN: 64512, gracefulRestart: {restartTime: 5s}}]\ndynamicNeighbors: [{prefix: 198.51.100.128/25, peerASN: 64512}]\n")
	p := PlanReload(old, cur)
	if !p.GracefulRestart || len(p.Restart) != 0 || len(p.RestartRanges) != 0 || len(p.Keep) != 1 {
		t.Fatalf("plan %+v", p)
	}
}

// helperRig is a daemon that has not run: handler calls go to its RIB and
// FIB queue, which the test reads instead of a kernel.
type helperRig struct {
	t    testing.TB
	d    *Daemon
	p    *peer
	enc  wire.Encoder
	nh   netip.Addr
	seen map[netip.Prefix][]fib.NextHop // the kernel as the queue would make it
	dels map[netip.Prefix]int           // deletes the queue asked for
}

func newHelperRig(t testing.TB, gr GracefulRestart) *helperRig {
	cfg := mustParse(t, "asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24, 2001:db8::/32]}\nneighbors: [{address: 198.51.100.11, peerASN: 64512}]\n")
	cfg.Neighbors[0].GracefulRestart = gr
	d := New(cfg, Options{Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d.ctx = ctx
	n := cfg.Neighbors[0]
	p := &peer{d: d, addr: n.Address, static: &n, label: n.Address.String()}
	p.sess = session.New(sessionConfig(cfg, n.Address, n.PeerASN, n.Timers, false), p, nil)
	d.peers[p.addr] = p
	return &helperRig{t: t, d: d, p: p, nh: n.Address, seen: map[netip.Prefix][]fib.NextHop{}, dels: map[netip.Prefix]int{}}
}

func (r *helperRig) announce(pfxs ...string) {
	r.t.Helper()
	var nlri [2][]wire.NLRI // per family
	for _, s := range pfxs {
		p := netip.MustParsePrefix(s)
		i := 0
		if p.Addr().Is6() {
			i = 1
		}
		nlri[i] = append(nlri[i], wire.NLRI{Prefix: p})
	}
	for _, n := range nlri {
		if len(n) > 0 {
			r.announceAs(r.p, r.nh, n)
		}
	}
}

// announceAs sends one UPDATE from p announcing nlri via nh.
func (r *helperRig) announceAs(p *peer, nh netip.Addr, nlri []wire.NLRI) {
	r.t.Helper()
	var a wire.Attrs
	a.Origin = wire.OriginIGP
	a.Set(wire.AttrOrigin)
	a.Set(wire.AttrASPath)
	fam := wire.IPv4Unicast
	if nlri[0].Prefix.Addr().Is6() {
		fam = wire.IPv6Unicast
		if nh.Is4() {
			nh = netip.MustParseAddr("2001:db8::11")
		}
	}
	b, _, err := r.enc.AppendReach(nil, fam, nh, netip.Addr{}, &a, nlri)
	if err != nil {
		r.t.Fatal(err)
	}
	for len(b) > 0 {
		n := int(b[16])<<8 | int(b[17])
		m, err := wire.DecodeMessage(b[:n], &r.enc.Options)
		if err != nil {
			r.t.Fatal(err)
		}
		if err := p.Update(nil, m.(*wire.Update), wire.ActionNone); err != nil {
			r.t.Fatal(err)
		}
		b = b[n:]
	}
}

// drain applies what the queue holds to the pretend kernel.
func (r *helperRig) drain() {
	b := r.d.queue.take(nil)
	for _, c := range b.changes {
		if c.Delete() {
			r.dels[c.Prefix]++
			delete(r.seen, c.Prefix)
			continue
		}
		r.seen[c.Prefix] = slices.Clone(c.NextHops)
	}
	b.finish()
}

func (r *helperRig) has(pfxs ...string) {
	r.t.Helper()
	r.drain()
	var got []string
	for p := range r.seen {
		got = append(got, p.String())
	}
	slices.Sort(got)
	slices.Sort(pfxs)
	if !slices.Equal(got, pfxs) {
		r.t.Fatalf("kernel has %v, want %v", got, pfxs)
	}
}

func (r *helperRig) outcome(o string) float64 {
	var m dto.Metric
	if err := r.d.metrics.GRRestarts.WithLabelValues(o).Write(&m); err != nil {
		r.t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func (r *helperRig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var grOn = GracefulRestart{Enabled: true, RestartTime: time.Minute, StaleTime: time.Minute}

// TestHelperEndOfRIB: a peer's restart keeps its routes; what it sends
// again never leaves the kernel, what it does not leaves at End-of-RIB.
func TestHelperEndOfRIB(t *testing.T) {
	r := newHelperRig(t, grOn)
	gr := grNeg(120, true, v4, v6)
	r.p.Established(nil, gr)
	r.announce("203.0.113.1/32", "203.0.113.2/32")
	r.has("203.0.113.1/32", "203.0.113.2/32")
	first := r.p.ribID.Load()

	r.p.Down(nil, io.EOF)
	r.has("203.0.113.1/32", "203.0.113.2/32")
	if st := r.p.grStatus(); !st.restarting || st.stale != 1 || r.p.staleID.Load() != first {
		t.Fatalf("after the session ended: %+v", st)
	}
	if got := r.d.RIB(context.Background(), "ipv4", netip.Prefix{}); len(got) != 2 || !got[0].Paths[0].Stale {
		t.Fatalf("rib view: %+v", got)
	}

	r.p.Established(nil, gr)
	if st := r.p.grStatus(); st.restarting || st.stale == 0 || st.deadline.IsZero() {
		t.Fatalf("back: %+v", st)
	}
	r.announce("203.0.113.1/32")
	r.has("203.0.113.1/32", "203.0.113.2/32")
	if got := r.d.rib.Lookup(netip.MustParsePrefix("203.0.113.1/32")); len(got) != 1 || got[0].Peer == 1 {
		t.Fatalf("the re-announced prefix: %+v (want the new session's path alone)", got)
	}
	r.p.EndOfRIB(nil, v6) // the other family first: nothing goes
	r.has("203.0.113.1/32", "203.0.113.2/32")
	r.p.EndOfRIB(nil, v4)
	r.has("203.0.113.1/32")
	if r.dels[netip.MustParsePrefix("203.0.113.1/32")] != 0 {
		t.Fatal("the re-announced prefix was deleted on the way")
	}
	if st := r.p.grStatus(); st.stale != 0 || r.outcome(grEndOfRIB) != 1 {
		t.Fatalf("after End-of-RIB: %+v, outcome %v", st, r.outcome(grEndOfRIB))
	}
}

// TestHelperHardEnds: what removes the routes at once, and the timers.
func TestHelperHardEnds(t *testing.T) {
	fast := GracefulRestart{Enabled: true, RestartTime: 50 * time.Millisecond, StaleTime: 50 * time.Millisecond}
	gr := grNeg(120, true, v4, v6)
	tests := []struct {
		name    string
		cfg     GracefulRestart
		run     func(r *helperRig)
		outcome string
	}{
		{"a NOTIFICATION", grOn, func(r *helperRig) { r.p.Down(nil, ceaseN) }, ""},
		{"no capability negotiated", grOn, func(r *helperRig) {
			r.p.Down(nil, io.EOF)
			r.has() // the first session negotiated none: see below
		}, ""},
		{"BFD down while stale routes wait", grOn, func(r *helperRig) {
			r.p.Down(nil, io.EOF)
			r.has("203.0.113.1/32")
			r.p.down()
		}, grReset},
		{"restart time runs out", fast, func(r *helperRig) {
			r.p.Down(nil, io.EOF)
			r.waitFor("the restart timer", func() bool { return r.p.staleID.Load() == 0 })
		}, grRestartTime},
		{"back, but no End-of-RIB in time", fast, func(r *helperRig) {
			r.p.Down(nil, io.EOF)
			r.p.Established(nil, gr)
			r.waitFor("the stale timer", func() bool { return r.p.staleID.Load() == 0 })
		}, grStaleTime},
		{"back without the F bit", grOn, func(r *helperRig) {
			r.p.Down(nil, io.EOF)
			r.has("203.0.113.1/32")
			r.p.Established(nil, grNeg(120, false, v4, v6))
		}, grNotPreserved},
		{"back without the capability", grOn, func(r *helperRig) {
			r.p.Down(nil, io.EOF)
			r.p.Established(nil, grNeg(0, false))
		}, grNotPreserved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newHelperRig(t, tc.cfg)
			n := gr
			if tc.name == "no capability negotiated" {
				n = grNeg(0, false)
			}
			r.p.Established(nil, n)
			r.announce("203.0.113.1/32")
			r.has("203.0.113.1/32")
			tc.run(r)
			r.has()
			if tc.outcome != "" && r.outcome(tc.outcome) != 1 {
				t.Fatalf("outcome %s not counted", tc.outcome)
			}
			if r.p.staleID.Load() != 0 {
				t.Fatal("a stale generation is left")
			}
		})
	}
}

// TestHelperSecondFailure: a session that fails again before End-of-RIB
// keeps what it sent, not what the first one had: never two generations.
func TestHelperSecondFailure(t *testing.T) {
	r := newHelperRig(t, grOn)
	gr := grNeg(120, true, v4)
	r.p.Established(nil, gr)
	r.announce("203.0.113.1/32", "203.0.113.2/32")
	r.p.Down(nil, io.EOF)
	r.p.Established(nil, gr)
	r.announce("203.0.113.1/32")
	r.p.Down(nil, io.EOF)
	r.has("203.0.113.1/32")
	if r.outcome(grReset) != 1 || r.p.staleID.Load() == 0 {
		t.Fatalf("reset %v, stale %d", r.outcome(grReset), r.p.staleID.Load())
	}
	// The daemon stopping leaves everything for the next start.
	r.p.Established(nil, gr)
	r.d.ctx = canceled()
	r.p.Down(nil, io.EOF)
	r.p.down()
	r.has("203.0.113.1/32")
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestHelperECMP: a prefix two nodes announce keeps both next hops while
// one of them restarts and after it sends the prefix again: its stale and
// fresh paths never both count.
func TestHelperECMP(t *testing.T) {
	r := newHelperRig(t, grOn)
	other := &peer{d: r.d, addr: netip.MustParseAddr("198.51.100.12"), label: "198.51.100.12", dynamic: true}
	other.sess = r.p.sess
	gr := grNeg(120, true, v4)
	r.p.Established(nil, gr)
	n2 := gr
	n2.PeerID = other.addr
	other.Established(nil, n2)
	pfx := netip.MustParsePrefix("203.0.113.10/32")
	r.announce(pfx.String())
	r.announceAs(other, other.addr, []wire.NLRI{{Prefix: pfx}})
	both := []fib.NextHop{{Addr: r.nh}, {Addr: other.addr}}
	check := func(when string) {
		t.Helper()
		r.drain()
		if got := r.seen[pfx]; !slices.Equal(got, both) {
			t.Fatalf("%s: kernel route %v, want %v", when, got, both)
		}
	}
	check("before")
	r.p.Down(nil, io.EOF)
	check("restarting")
	r.p.Established(nil, gr)
	r.announce(pfx.String())
	if paths := r.d.rib.Lookup(pfx); len(paths) != 2 {
		t.Fatalf("paths after the re-announcement: %+v, want one per node", paths)
	}
	check("announced again")
	r.p.EndOfRIB(nil, v4)
	check("after End-of-RIB")
	if r.dels[pfx] != 0 {
		t.Fatalf("the route was deleted %d times", r.dels[pfx])
	}
}

// BenchmarkHelperReannounce is what a stale generation costs a restarted
// peer's UPDATEs: each prefix it sends is also withdrawn from the stale
// generation.
func BenchmarkHelperReannounce(b *testing.B) {
	const n = 10_000
	nlri := make([]wire.NLRI, n)
	for i := range nlri {
		nlri[i] = wire.NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32)}
	}
	// 203.0.113.0/24 holds 256 /32s: spread the rest over 198.18.0.0/15.
	for i := 256; i < n; i++ {
		nlri[i] = wire.NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32)}
	}
	for _, stale := range []bool{false, true} {
		b.Run(map[bool]string{false: "fresh", true: "over-stale"}[stale], func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				r := newHelperRig(b, grOn)
				r.d.cfg.Load().Import.Prefixes = append(r.d.cfg.Load().Import.Prefixes, netip.MustParsePrefix("198.18.0.0/15"))
				gr := grNeg(120, true, v4)
				r.p.Established(nil, gr)
				if stale {
					r.announceAs(r.p, r.nh, nlri)
					r.drain()
					r.p.Down(nil, io.EOF)
					r.p.Established(nil, gr)
				}
				b.StartTimer()
				r.announceAs(r.p, r.nh, nlri)
				b.StopTimer()
				r.drain()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/prefix")
		})
	}
}
