package announce

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/view"
)

// Namespace tests: the announcer in a node's namespace (a re-executed test
// binary, see helper_test.go) speaks over a LAN to a router in another:
// our router daemon, gobgpd, BIRD or FRR. Addresses: the router is .1, the
// nodes .11 and .12 of 198.51.100.0/24 and 2001:db8::/64; announced
// prefixes are in 203.0.113.0/24 and 2001:db8:100::/48.

// host is one namespace of the lab.
type host struct {
	ns     *lab.Netns
	v4, v6 netip.Addr
}

// newLab builds a LAN with the router and n nodes, removed when the test
// ends (with every process's log printed if it failed).
func newLab(t *testing.T, nodes int) (r host, ns []host) {
	t.Helper()
	labtest.Require(t)
	mk := func(n int) host {
		return host{v4: netip.AddrFrom4([4]byte{198, 51, 100, byte(n)}), v6: addr(fmt.Sprintf("2001:db8::%d", n))}
	}
	names := []string{"router"}
	all := []host{mk(1)}
	for i := range nodes {
		names = append(names, fmt.Sprintf("node%d", i+1))
		all = append(all, mk(11+i))
	}
	var specs []lab.HostSpec
	for i, h := range all {
		specs = append(specs, lab.HostSpec{Name: names[i], Addrs: []netip.Prefix{netip.PrefixFrom(h.v4, 24), netip.PrefixFrom(h.v6, 64)}})
	}
	l, _ := labtest.LAN(t, specs...)
	for i := range all {
		all[i].ns = l.Host(names[i])
	}
	return all[0], all[1:]
}

// self is the test binary, re-executed in namespaces.
func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// unixClient is an HTTP client for a unix socket.
func unixClient(socket string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}}}
}

// speakerProc is the announcer running in a node's namespace.
type speakerProc struct {
	proc   *lab.Proc
	socket string
	hc     *http.Client
	view   *view.Client
}

// startSpeaker runs the speaker helper in h with peers and waits for its API.
func startSpeaker(t *testing.T, ctx context.Context, h host, peers ...PeerConfig) *speakerProc {
	t.Helper()
	cfg := speakerConfig{RouterID: h.v4, Socket: filepath.Join(h.ns.Dir, "speaker.sock"), Peers: peers}
	path := filepath.Join(h.ns.Dir, "speaker.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	proc, err := h.ns.StartWith(ctx, lab.StartOptions{Label: "speaker", Env: []string{helperRoleEnv + "=speaker", helperConfigEnv + "=" + path}}, self(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Stop() })
	s := &speakerProc{proc: proc, socket: cfg.Socket, hc: unixClient(cfg.Socket), view: view.NewClient(cfg.Socket)}
	if err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		_, err := s.status(ctx)
		return err == nil, err
	}); err != nil {
		t.Fatalf("speaker API: %v\n%s", err, proc.Logs())
	}
	return s
}

// call POSTs body as JSON (or GETs, when body is nil) and decodes the answer.
func (s *speakerProc) call(ctx context.Context, path string, body, out any) error {
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		method, rd = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://speaker"+path, rd)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (s *speakerProc) status(ctx context.Context) ([]PeerStatus, error) {
	var st []PeerStatus
	return st, s.call(ctx, "/test/status", nil, &st)
}

func (s *speakerProc) announce(t *testing.T, ctx context.Context, peer string, rs []Route) {
	t.Helper()
	if err := s.call(ctx, "/test/announce?peer="+url.QueryEscape(peer), rs, nil); err != nil {
		t.Fatal(err)
	}
}

// shutdown runs Announcer.Shutdown with msg in the speaker.
func (s *speakerProc) shutdown(t *testing.T, ctx context.Context, msg string) {
	t.Helper()
	var e string
	if err := s.call(ctx, "/test/shutdown?msg="+url.QueryEscape(msg), struct{}{}, &e); err != nil || e != "" {
		t.Fatalf("shutdown: %v %s", err, e)
	}
}

// waitStatus polls the named peer's status until cond holds.
func (s *speakerProc) waitStatus(t *testing.T, ctx context.Context, name string, cond func(PeerStatus) bool) PeerStatus {
	t.Helper()
	var last []PeerStatus
	var got PeerStatus
	err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		st, err := s.status(ctx)
		last = st
		for _, p := range st {
			if p.Name == name && cond(p) {
				got = p
				return true, nil
			}
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("speaker peer %s: %v; last status %+v", name, err, last)
	}
	return got
}

// routerPeer is the speaker's config for a router at r, with short timers,
// offering route refresh.
func routerPeer(name string, node, r host, localAS, peerAS uint32) PeerConfig {
	return PeerConfig{Name: name, NextHop6: node.v6, Session: session.Config{
		LocalAS: localAS, PeerAS: peerAS, PeerAddr: r.v4,
		HoldTime: 9 * time.Second, ConnectRetry: time.Second, RouteRefresh: true}}
}

// routerProc is our router daemon (the router package, as `bgplb router`
// runs it) in the router's namespace.
type routerProc struct {
	h      host
	config string
	socket string
	proc   *lab.Proc
	view   *view.Client
}

// startRouter writes config (SOCKET replaced by the API socket's path) and
// starts the daemon.
func startRouter(t *testing.T, ctx context.Context, h host, config string) *routerProc {
	t.Helper()
	rp := &routerProc{h: h, config: filepath.Join(h.ns.Dir, "router.yaml"), socket: filepath.Join(h.ns.Dir, "router.sock")}
	if err := os.WriteFile(rp.config, []byte(strings.ReplaceAll(config, "SOCKET", rp.socket)), 0o600); err != nil {
		t.Fatal(err)
	}
	rp.view = view.NewClient(rp.socket)
	rp.start(t, ctx)
	t.Cleanup(func() { _ = rp.proc.Stop() })
	return rp
}

func (rp *routerProc) start(t *testing.T, ctx context.Context) {
	t.Helper()
	var err error
	rp.proc, err = rp.h.ns.StartWith(ctx, lab.StartOptions{Label: "router",
		Env: []string{helperRoleEnv + "=router", helperConfigEnv + "=" + rp.config}}, self(t))
	if err != nil {
		t.Fatal(err)
	}
}

// restart stops the daemon (it closes its sessions) and starts a new one:
// an empty RIB that only a resend can fill again.
func (rp *routerProc) restart(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := rp.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	rp.start(t, ctx)
}

// waitRIB polls the router's RIB (what `bgplb rib -o json` shows) until
// cond holds.
func (rp *routerProc) waitRIB(t *testing.T, ctx context.Context, what string, cond func([]view.RIBEntry) bool) []view.RIBEntry {
	t.Helper()
	var last []view.RIBEntry
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		es, err := rp.view.RIB(ctx, "", netip.Prefix{})
		last = es
		return err == nil && cond(es), err
	})
	if err != nil {
		var b bytes.Buffer
		_ = view.WriteRIB(&b, last, time.Now())
		t.Fatalf("router RIB, waiting for %s: %v\n%s", what, err, b.String())
	}
	return last
}

// waitNeighbor polls the router's neighbour view until cond holds for addr.
func (rp *routerProc) waitNeighbor(t *testing.T, ctx context.Context, a netip.Addr, cond func(view.Neighbor) bool) view.Neighbor {
	t.Helper()
	var last []view.Neighbor
	var got view.Neighbor
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		ns, err := rp.view.Neighbors(ctx)
		last = ns
		i := slices.IndexFunc(ns, func(n view.Neighbor) bool { return n.Address == a && cond(n) })
		if i >= 0 {
			got = ns[i]
		}
		return i >= 0, err
	})
	if err != nil {
		t.Fatalf("router neighbor %v: %v; last %+v", a, err, last)
	}
	return got
}

// want is the expected gateways per prefix in a kernel table (proto bgp);
// an empty list means the prefix must be absent.
type want map[netip.Prefix][]netip.Addr

func waitKernel(t *testing.T, ctx context.Context, ns *lab.Netns, w want) []lab.Route {
	t.Helper()
	rs, err := ns.WaitRoutes(ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
		for p, gws := range w {
			i := slices.IndexFunc(rs, func(r lab.Route) bool { return r.Dst == p })
			if (i < 0) != (len(gws) == 0) {
				return false
			}
			if i >= 0 {
				got := rs[i].Gateways()
				slices.SortFunc(got, netip.Addr.Compare)
				exp := slices.Clone(gws)
				slices.SortFunc(exp, netip.Addr.Compare)
				if !slices.Equal(got, exp) {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("kernel of %s, want %v: %v", ns.Name, w, err)
	}
	return rs
}

func pathOf(es []view.RIBEntry, p netip.Prefix) (view.Path, bool) {
	for _, e := range es {
		if e.Prefix == p && len(e.Paths) > 0 {
			return e.Paths[0], true
		}
	}
	return view.Path{}, false
}
