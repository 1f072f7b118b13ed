package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/view"
)

const soakRouterConfig = `asn: 64512
routerID: 198.51.100.1
dynamicNeighbors:
  - {prefix: 198.51.100.128/25, peerASN: 64513, maxPeers: 100, holdTime: 9s}
import:
  prefixes: ["198.18.0.0/15"]
  maxPrefixes: 10000
metrics: {address: "127.0.0.1:9473"}
api: {socket: SOCKET}
`

const (
	soakPeers  = 50
	soakOwn    = 100 // /32s each peer alone announces
	soakShared = 20  // /32s every peer announces: ECMP sets that grow and shrink
)

// soakAllowed are the router's WARN/ERROR lines a soak provokes on
// purpose: its peers end sessions with Cease / Administrative Shutdown
// (the connection resets it also does are logged at INFO).
var soakAllowed = []*regexp.Regexp{
	regexp.MustCompile(`level=WARN msg="NOTIFICATION received" .*notification="Cease / Administrative Shutdown: \\"soak\\""`),
	// Its resets are failures, and a peer that keeps failing is held back
	// (RFC 4271 damping): that is the router doing its job.
	regexp.MustCompile(`level=WARN msg="damping a failing peer"`),
}

func soakPeerAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(130 + i)}) }

func soakOwnRoutes(i int) []wire.NLRI {
	out := make([]wire.NLRI, soakOwn)
	for r := range out {
		out[r] = wire.NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), byte(r)}), 32)}
	}
	return out
}

func soakSharedRoutes() []wire.NLRI {
	out := make([]wire.NLRI, soakShared)
	for r := range out {
		out[r] = wire.NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(r)}), 32)}
	}
	return out
}

// soakPeer flaps one peer until ctx ends: up, announce, churn a few
// seconds, then down by a reset or a Cease, a pause, and again.
// A session still up at the end goes into kept, for the final check.
func soakPeer(ctx context.Context, ns *lab.Netns, i int, rng *rand.Rand, kept *injectors, sessions *atomic.Int64) error {
	own := soakOwnRoutes(i)
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		inj, err := dialInjector(dctx, ns, injectorConfig{Local: soakPeerAddr(i), Remote: cmpRouter, LocalAS: cmpNodeAS, PeerAS: cmpRouterAS})
		cancel()
		if err != nil {
			// A peer the router damps for its resets is refused for up to
			// two minutes: it tries again, as a speaker would.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		sessions.Add(1)
		err = churn(ctx, inj, own, rng)
		if ctx.Err() != nil {
			// The end: leave this session up or down, as it happens to be.
			if rng.IntN(2) == 0 {
				inj.drop()
			} else {
				kept.add(inj)
			}
			return nil
		}
		if err != nil && inj.established() {
			inj.drop()
			return fmt.Errorf("peer %d: %w", i, err)
		}
		if rng.IntN(2) == 0 {
			inj.drop()
		} else {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = inj.peer.Shutdown(sctx, "soak")
			cancel()
			inj.drop()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(200+rng.IntN(1800)) * time.Millisecond):
		}
	}
	return nil
}

// churn announces the peer's routes and the shared ones, then withdraws
// and re-announces random tens of them every few hundred milliseconds for
// 2-15 s.
func churn(ctx context.Context, inj *injector, own []wire.NLRI, rng *rand.Rand) error {
	announce := func(nlri []wire.NLRI) error {
		msgs, err := inj.encodeReach(nlri)
		if err != nil {
			return err
		}
		return inj.send(ctx, msgs)
	}
	if err := announce(append(append([]wire.NLRI(nil), own...), soakSharedRoutes()...)); err != nil {
		return err
	}
	end := time.Now().Add(time.Duration(2+rng.IntN(14)) * time.Second)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
		}
		pick := make([]wire.NLRI, 10)
		for k := range pick {
			pick[k] = own[rng.IntN(len(own))]
		}
		msgs, err := inj.encodeWithdraw(pick)
		if err != nil {
			return err
		}
		if err := inj.send(ctx, msgs); err != nil {
			return err
		}
		if err := announce(pick[:rng.IntN(len(pick)+1)]); err != nil {
			return err
		}
	}
	return nil
}

// TestSoak runs `make soak`: 50 peers flapping and churning against the
// router for SOAK_DURATION; the router's RSS and goroutines must stay flat,
// its log hold no WARN or ERROR but the allowed ones, and at the end the
// kernel equal its RIB. Skipped unless SOAK_DURATION is set, so `make test`
// does not run it.
func TestSoak(t *testing.T) {
	dur, err := time.ParseDuration(os.Getenv("SOAK_DURATION"))
	if err != nil || dur <= 0 {
		t.Skip("set SOAK_DURATION (make soak) to run the soak")
	}
	labtest.Require(t)
	ctx := labtest.Context(t, dur+5*time.Minute)
	l, _ := labtest.LAN(t,
		lab.HostSpec{Name: "router", Addrs: []netip.Prefix{netip.PrefixFrom(cmpRouter, 24)}},
		lab.HostSpec{Name: "nodes", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}})
	rns, nns := l.Host("router"), l.Host("nodes")
	addrs := make([][]string, soakPeers)
	for i := range addrs {
		addrs[i] = []string{"addr", "add", soakPeerAddr(i).String() + "/32", "dev", lab.DefaultIfname}
	}
	if err := nns.IPBatch(ctx, addrs...); err != nil {
		t.Fatal(err)
	}
	r, err := startRouter(ctx, bgplb(t), rns, t.TempDir(), soakRouterConfig, "info")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.fwd.Close()
		_ = r.proc.Stop()
	})

	cctx, stop := context.WithTimeout(ctx, dur)
	defer stop()
	var wg sync.WaitGroup
	var kept injectors
	t.Cleanup(kept.dropAll)
	errs := make(chan error, soakPeers)
	var sessions atomic.Int64
	for i := range soakPeers {
		rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
		wg.Go(func() { errs <- soakPeer(cctx, nns, i, rng, &kept, &sessions) })
	}
	rss, gor := sampleRouter(cctx, t, r, max(dur/120, time.Second))
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// Damping must not have turned the soak into an idle router: every
	// peer came up several times on average.
	if n := sessions.Load(); n < 3*soakPeers {
		t.Errorf("only %d sessions came up in %v for %d peers", n, dur, soakPeers)
	}
	t.Logf("%d sessions came up", sessions.Load())

	frss := Flat(rss, 0.2, 0.20, 4<<20)
	fgor := Flat(gor, 0.2, 0.10, 20)
	t.Logf("%d samples over %v; RSS %v; goroutines %v", len(rss), dur, frss, fgor)
	if !frss.Flat || !fgor.Flat {
		t.Errorf("the router grew: RSS %v; goroutines %v", frss, fgor)
	}
	checkFIBEqualsRIB(ctx, t, r, rns)
	if bad := UnexpectedLogLines(r.proc.Logs(), soakAllowed); len(bad) > 0 {
		t.Errorf("%d unexpected WARN/ERROR lines in the router's log, first ones:\n%s", len(bad), strings.Join(bad[:min(len(bad), 20)], "\n"))
	}
}

// sampleRouter scrapes the router's RSS and goroutines every interval
// until ctx ends.
func sampleRouter(ctx context.Context, t *testing.T, r *routerProc, interval time.Duration) (rss, goroutines []float64) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return rss, goroutines
		case <-tick.C:
		}
		m, err := r.scrape()
		if err != nil {
			if exited, perr := r.proc.Exited(); exited {
				t.Fatalf("router exited: %v; log:\n%s", perr, tail(r.proc.Logs(), 40))
			}
			continue
		}
		rss = append(rss, m["process_resident_memory_bytes"])
		goroutines = append(goroutines, m["go_goroutines"])
	}
}

// checkFIBEqualsRIB waits until the kernel's bgp routes equal what the
// RIB selects (next hops of the best and multipath paths), and fails with
// the differences if they never do.
func checkFIBEqualsRIB(ctx context.Context, t *testing.T, r *routerProc, ns *lab.Netns) {
	client := view.NewClient(r.socket)
	var diff []string
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := lab.Poll(wctx, 250*time.Millisecond, func() (bool, error) {
		rib, err := client.RIB(wctx, "ipv4", netip.Prefix{})
		if err != nil {
			return false, nil
		}
		kernel, err := ns.Routes(wctx, lab.RouteQuery{Family: 4, Proto: "bgp"})
		if err != nil {
			return false, nil
		}
		diff = FIBDiff(ribWants(rib), kernelHas(kernel))
		return len(diff) == 0, nil
	})
	if err != nil {
		t.Errorf("the kernel never equalled the RIB (%v); %d differences, first:\n%s", err, len(diff), strings.Join(diff[:min(len(diff), 20)], "\n"))
	}
}

// ribWants maps each prefix with a best path to the next hops of its ECMP
// set (the best path alone when there is no set).
func ribWants(rib []view.RIBEntry) map[netip.Prefix][]netip.Addr {
	out := map[netip.Prefix][]netip.Addr{}
	for _, e := range rib {
		var multi, best []netip.Addr
		for _, p := range e.Paths {
			if p.Multipath {
				multi = append(multi, p.NextHop)
			}
			if p.Best {
				best = append(best, p.NextHop)
			}
		}
		switch {
		case len(multi) > 0:
			out[e.Prefix] = multi
		case len(best) > 0:
			out[e.Prefix] = best
		}
	}
	return out
}

func kernelHas(rs []lab.Route) map[netip.Prefix][]netip.Addr {
	out := map[netip.Prefix][]netip.Addr{}
	for _, r := range rs {
		out[r.Dst] = append(out[r.Dst], r.Gateways()...)
	}
	return out
}
