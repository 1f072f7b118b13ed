package e2e

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
)

// injector is a node that announces many routes at once: our own session
// package on the node's side, since no daemon from Debian can be fed a
// million routes quickly.
type injector struct {
	conn net.Conn // the TCP connection: close it to drop the session
	peer *session.Peer
	neg  session.Negotiated
	from node
	// eor gets the families the router sent End-of-RIB for.
	eor chan wire.Family
}

// injectorHandler only reports the session coming up and the router's
// End-of-RIB markers.
type injectorHandler struct {
	up  chan session.Negotiated
	eor chan wire.Family
}

func (h injectorHandler) Established(_ *session.Peer, n session.Negotiated) {
	select {
	case h.up <- n:
	default:
	}
}
func (injectorHandler) Update(*session.Peer, *wire.Update, wire.Action) error { return nil }
func (h injectorHandler) EndOfRIB(_ *session.Peer, f wire.Family) {
	select {
	case h.eor <- f:
	default:
	}
}
func (injectorHandler) Down(*session.Peer, error) {}

// inject opens an iBGP session (AS 64512) from n to the router, which must
// have n as a passive neighbour; the session ends with the test.
func inject(t *testing.T, ctx context.Context, n node, router netip.Addr) *injector {
	t.Helper()
	return injectWith(t, ctx, n, router, nil)
}

// injectWith is inject with the session's config edited first (nil: as is).
func injectWith(t testing.TB, ctx context.Context, n node, router netip.Addr, edit func(*session.Config)) *injector {
	t.Helper()
	var conn net.Conn
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		derr := n.ns.Do(func() error {
			var err error
			conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(router, 179).String(), time.Second)
			return err
		})
		return derr == nil, nil
	})
	if err != nil {
		t.Fatal("router never listened:", err)
	}
	h := injectorHandler{up: make(chan session.Negotiated, 1), eor: make(chan wire.Family, 4)}
	cfg := session.Config{LocalAS: 64512, PeerAS: 64512, RouterID: n.v4, PeerAddr: router, Passive: true, ExtendedMessage: true}
	if edit != nil {
		edit(&cfg)
	}
	p := session.New(cfg, h, slog.New(slog.DiscardHandler))
	pctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(pctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	p.Accept(conn)
	in := &injector{conn: conn, peer: p, from: n, eor: h.eor}
	select {
	case in.neg = <-h.up:
	case <-ctx.Done():
		t.Fatal("injector session never came up")
	}
	return in
}

// scaleRoutes returns n distinct host routes: /32s from the benchmarking
// range 198.18.0.0/15 (131,072 of them), then /128s from 2001:db8:5000::/48.
func scaleRoutes(n int) (v4, v6 []wire.NLRI) {
	for i := range n {
		if i < 1<<17 {
			a := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
			v4 = append(v4, wire.NLRI{Prefix: netip.PrefixFrom(a, 32)})
			continue
		}
		j := i - 1<<17
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x50, 0x00, 13: byte(j >> 16), 14: byte(j >> 8), 15: byte(j)})
		v6 = append(v6, wire.NLRI{Prefix: netip.PrefixFrom(a, 128)})
	}
	return v4, v6
}

// updates encodes the announcement (next hop: the injecting node) or the
// withdrawal of v4 and v6.
func (in *injector) updates(t *testing.T, v4, v6 []wire.NLRI, withdraw bool) []byte {
	t.Helper()
	enc := wire.Encoder{Options: in.neg.Tx}
	var attrs wire.Attrs
	attrs.Origin, attrs.LocalPref = wire.OriginIGP, 100
	for _, a := range []uint8{wire.AttrOrigin, wire.AttrASPath, wire.AttrLocalPref} {
		attrs.Set(a)
	}
	var b []byte
	for _, f := range []struct {
		fam  wire.Family
		nh   netip.Addr
		nlri []wire.NLRI
	}{{wire.IPv4Unicast, in.from.v4, v4}, {wire.IPv6Unicast, in.from.v6, v6}} {
		if len(f.nlri) == 0 {
			continue
		}
		var err error
		if withdraw {
			b, _, err = enc.AppendWithdraw(b, f.fam, f.nlri)
		} else {
			b, _, err = enc.AppendReach(b, f.fam, f.nh, netip.Addr{}, &attrs, f.nlri)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// send queues whole UPDATE messages in chunks of about 64 KiB, until ctx
// ends or the session goes down.
func (in *injector) send(ctx context.Context, msgs []byte) error {
	for len(msgs) > 0 {
		n := 0
		for n < len(msgs) && n < 64<<10 {
			n += int(msgs[n+16])<<8 | int(msgs[n+17])
		}
		if err := in.peer.Send(ctx, msgs[:n]); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// metricsProbe reads the router's metrics from the root namespace.
type metricsProbe struct{ url string }

// probeMetrics forwards to the router's metrics address (inside its
// namespace) for the rest of the test.
func probeMetrics(t testing.TB, r node, addr string) metricsProbe {
	t.Helper()
	fwd, err := lab.Forward(nil, "127.0.0.1:0", r.ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fwd.Close() })
	return metricsProbe{url: "http://" + fwd.Addr().String() + "/metrics"}
}

// gauge returns the value of an unlabelled metric.
func (m metricsProbe) gauge(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in the metrics", name)
}

// waitGauge polls name until ok accepts its value, which it returns.
func (m metricsProbe) waitGauge(t testing.TB, ctx context.Context, name string, ok func(float64) bool) float64 {
	t.Helper()
	var last float64
	var lastErr error
	err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		last, lastErr = m.gauge(ctx, name)
		return lastErr == nil && ok(last), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last value %v, error %v)", name, err, last, lastErr)
	}
	return last
}
