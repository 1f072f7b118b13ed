package session

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
	"golang.org/x/sys/unix"
)

func TestNegotiate(t *testing.T) {
	v4, v6 := wire.IPv4Unicast, wire.IPv6Unicast
	base := Config{LocalAS: 64512, PeerAS: 64512, RouterID: idA, PeerAddr: loopback}
	peerOpen := func(as uint32, hold uint16, id netip.Addr, caps wire.Capabilities) *wire.Open {
		return wire.NewOpen(as, hold, id, caps)
	}
	both := wire.Capabilities{Multiprotocol: []wire.Family{v4, v6}}
	cases := []struct {
		name  string
		cfg   func(*Config)
		peer  *wire.Open
		sub   uint8 // refusal: OPEN Message Error subcode
		check func(t *testing.T, n Negotiated)
	}{
		{name: "iBGP defaults", peer: peerOpen(64512, 90, idB, both), check: func(t *testing.T, n Negotiated) {
			if n.External || !n.AS4 || n.HoldTime != 90*time.Second || n.KeepaliveTime != 30*time.Second ||
				!slices.Equal(n.Families, []wire.Family{v4, v6}) || n.Rx != n.Tx || n.Rx.External {
				t.Errorf("%+v", n)
			}
		}},
		{name: "hold time is the smaller, keepalive a third", peer: peerOpen(64512, 9, idB, both), check: func(t *testing.T, n Negotiated) {
			if n.HoldTime != 9*time.Second || n.KeepaliveTime != 3*time.Second {
				t.Errorf("hold %v keepalive %v", n.HoldTime, n.KeepaliveTime)
			}
		}},
		{name: "configured keepalive kept when shorter", cfg: func(c *Config) { c.KeepaliveTime = 5 * time.Second },
			peer: peerOpen(64512, 90, idB, both), check: func(t *testing.T, n Negotiated) {
				if n.KeepaliveTime != 5*time.Second {
					t.Errorf("keepalive %v", n.KeepaliveTime)
				}
			}},
		{name: "configured keepalive capped at a third", cfg: func(c *Config) { c.KeepaliveTime = time.Minute },
			peer: peerOpen(64512, 30, idB, both), check: func(t *testing.T, n Negotiated) {
				if n.KeepaliveTime != 10*time.Second {
					t.Errorf("keepalive %v", n.KeepaliveTime)
				}
			}},
		{name: "peer hold 0 disables keepalives", peer: peerOpen(64512, 0, idB, both), check: func(t *testing.T, n Negotiated) {
			if n.HoldTime != 0 || n.KeepaliveTime != 0 {
				t.Errorf("hold %v keepalive %v", n.HoldTime, n.KeepaliveTime)
			}
		}},
		{name: "our hold 0", cfg: func(c *Config) { c.DisableHoldTime = true }, peer: peerOpen(64512, 90, idB, both),
			check: func(t *testing.T, n Negotiated) {
				if n.HoldTime != 0 || n.LocalOpen.HoldTime != 0 {
					t.Errorf("hold %v", n.HoldTime)
				}
			}},
		{name: "hold below minimum", cfg: func(c *Config) { c.MinHoldTime = 10 * time.Second },
			peer: peerOpen(64512, 9, idB, both), sub: wire.ErrSubUnacceptableHoldTime},
		{name: "hold 0 below minimum", cfg: func(c *Config) { c.MinHoldTime = 3 * time.Second },
			peer: peerOpen(64512, 0, idB, both), sub: wire.ErrSubUnacceptableHoldTime},
		{name: "wrong AS", peer: peerOpen(64513, 90, idB, both), sub: wire.ErrSubBadPeerAS},
		{name: "4-octet AS matches", cfg: func(c *Config) { c.PeerAS = 4200000000 }, peer: peerOpen(4200000000, 90, idB, both),
			check: func(t *testing.T, n Negotiated) {
				if n.PeerAS != 4200000000 || !n.External {
					t.Errorf("peer AS %d external %v", n.PeerAS, n.External)
				}
			}},
		{name: "AS_TRANS without the capability is not the 4-octet AS", cfg: func(c *Config) { c.PeerAS = 4200000000 },
			peer: &wire.Open{MyAS: wire.ASTrans, HoldTime: 90, ID: idB}, sub: wire.ErrSubBadPeerAS},
		{name: "any AS when PeerAS is 0", cfg: func(c *Config) { c.PeerAS = 0 }, peer: peerOpen(65001, 90, idB, both),
			check: func(t *testing.T, n Negotiated) {
				if n.PeerAS != 65001 || !n.External || !n.Rx.External || !n.Tx.External {
					t.Errorf("%+v", n)
				}
			}},
		{name: "iBGP with our identifier", peer: peerOpen(64512, 90, idA, both), sub: wire.ErrSubBadBGPIdentifier},
		{name: "eBGP may share our identifier (RFC 6286)", cfg: func(c *Config) { c.PeerAS = 65001 },
			peer: peerOpen(65001, 90, idA, both), check: func(*testing.T, Negotiated) {}},
		{name: "no multiprotocol capability means IPv4 unicast", peer: &wire.Open{MyAS: 64512, HoldTime: 90, ID: idB},
			check: func(t *testing.T, n Negotiated) {
				if !slices.Equal(n.Families, []wire.Family{v4}) || n.AS4 || n.Rx.AS4 {
					t.Errorf("families %v AS4 %v", n.Families, n.AS4)
				}
			}},
		{name: "families intersect", cfg: func(c *Config) { c.Families = []wire.Family{v6} }, peer: peerOpen(64512, 90, idB, both),
			check: func(t *testing.T, n Negotiated) {
				if !slices.Equal(n.Families, []wire.Family{v6}) || !n.HasFamily(v6) || n.HasFamily(v4) {
					t.Errorf("families %v", n.Families)
				}
			}},
		{name: "optional capabilities need both sides", cfg: func(c *Config) {
			c.ExtendedMessage, c.RouteRefresh, c.EnhancedRouteRefresh = true, true, true
		}, peer: peerOpen(64512, 90, idB, wire.Capabilities{Multiprotocol: []wire.Family{v4, v6}, RouteRefresh: true}),
			check: func(t *testing.T, n Negotiated) {
				if n.ExtendedMessage || n.Rx.ExtendedMessage || !n.RouteRefresh || n.EnhancedRouteRefresh {
					t.Errorf("%+v", n)
				}
			}},
		{name: "extended messages both ways", cfg: func(c *Config) { c.ExtendedMessage = true },
			peer: peerOpen(64512, 90, idB, wire.Capabilities{ExtendedMessage: true}), check: func(t *testing.T, n Negotiated) {
				if !n.Rx.ExtendedMessage || !n.Tx.ExtendedMessage {
					t.Errorf("%+v", n)
				}
			}},
		{name: "extended next hop per direction", cfg: func(c *Config) { c.ExtendedNextHop = true },
			peer: peerOpen(64512, 90, idB, wire.Capabilities{Multiprotocol: []wire.Family{v4, v6}}), check: func(t *testing.T, n Negotiated) {
				// We announced it, so the peer may send IPv4 routes over an
				// IPv6 next hop (and the reverse); it did not, so we may not.
				if !n.Rx.ExtendedNextHop.Has(v4) || !n.Rx.ExtendedNextHop.Has(v6) || n.Tx.ExtendedNextHop != 0 {
					t.Errorf("rx %v tx %v", n.Rx.ExtendedNextHop, n.Tx.ExtendedNextHop)
				}
			}},
		{name: "peer's extended next hop lets us send", peer: peerOpen(64512, 90, idB, wire.Capabilities{
			Multiprotocol:   []wire.Family{v4, v6},
			ExtendedNextHop: []wire.ExtendedNextHop{{NLRI: v4, NextHopAFI: wire.AFIIPv6}, {NLRI: v6, NextHopAFI: wire.AFIIPv6}},
		}), check: func(t *testing.T, n Negotiated) {
			if !n.Tx.ExtendedNextHop.Has(v4) || n.Tx.ExtendedNextHop.Has(v6) || n.Rx.ExtendedNextHop != 0 {
				t.Errorf("rx %v tx %v", n.Rx.ExtendedNextHop, n.Tx.ExtendedNextHop)
			}
		}},
		{name: "ADD-PATH receive meets the peer's send", cfg: func(c *Config) { c.AddPathReceive = []wire.Family{v4, v6} },
			peer: peerOpen(64512, 90, idB, wire.Capabilities{Multiprotocol: []wire.Family{v4, v6},
				AddPath: []wire.AddPathFamily{{Family: v4, Mode: wire.AddPathSend}, {Family: v6, Mode: wire.AddPathReceive}}}),
			check: func(t *testing.T, n Negotiated) {
				if !n.Rx.AddPath.Has(v4) || n.Rx.AddPath.Has(v6) || n.Tx.AddPath != 0 {
					t.Errorf("rx %v tx %v", n.Rx.AddPath, n.Tx.AddPath)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			c = c.withDefaults()
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			n, err := negotiate(c, localOpen(c), tc.peer)
			if tc.sub != 0 {
				we, ok := wire.AsError(err)
				if !ok || we.Code != wire.ErrCodeOpen || we.Subcode != tc.sub || we.Action != wire.SessionReset {
					t.Fatalf("error %v, want OPEN Message Error subcode %d", err, tc.sub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, n)
		})
	}
}

func TestLocalOpen(t *testing.T) {
	c := Config{LocalAS: 4200000000, RouterID: idA, PeerAddr: loopback, ExtendedNextHop: true,
		RouteRefresh: true, AddPathReceive: []wire.Family{wire.IPv4Unicast}}.withDefaults()
	o := localOpen(c)
	b, err := wire.AppendOpen(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.DecodeOpen(b[wire.HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if got.MyAS != wire.ASTrans || got.AS() != 4200000000 || got.HoldTime != 90 || got.ID != idA ||
		!got.Caps.RouteRefresh || got.Caps.EnhancedRouteRefresh ||
		!slices.Equal(got.Caps.Multiprotocol, []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast}) ||
		len(got.Caps.ExtendedNextHop) != 2 || got.Caps.AddPathFor(wire.IPv4Unicast) != wire.AddPathReceive {
		t.Errorf("OPEN %+v", got)
	}
}

func TestKeepIncoming(t *testing.T) {
	a, b := netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("198.51.100.10")
	cases := []struct {
		local, peer     netip.Addr
		localAS, peerAS uint32
		keepIn          bool
	}{
		{a, b, 1, 1, true},  // our identifier lower: the peer's connection wins
		{b, a, 1, 1, false}, // ours higher: ours wins
		// Compared as unsigned integers, not as strings ("9" > "10").
		{netip.MustParseAddr("9.0.0.1"), netip.MustParseAddr("10.0.0.1"), 1, 1, true},
		{netip.MustParseAddr("128.0.0.1"), netip.MustParseAddr("127.255.255.255"), 1, 1, false},
		// Equal identifiers (RFC 6286): the larger AS wins.
		{a, a, 64512, 64513, true},
		{a, a, 64513, 64512, false},
	}
	for _, c := range cases {
		if got := keepIncoming(c.local, c.peer, c.localAS, c.peerAS); got != c.keepIn {
			t.Errorf("keepIncoming(%v, %v, %d, %d) = %v", c.local, c.peer, c.localAS, c.peerAS, got)
		}
		// Both ends must agree on the surviving connection.
		if c.local != c.peer || c.localAS != c.peerAS {
			if keepIncoming(c.peer, c.local, c.peerAS, c.localAS) == c.keepIn {
				t.Errorf("%v/%v: both sides keep the same direction", c.local, c.peer)
			}
		}
	}
}

func TestJitter(t *testing.T) {
	d := 4 * time.Second
	for _, c := range []struct {
		r    float64
		want time.Duration
	}{{0, 3 * time.Second}, {0.5, 3500 * time.Millisecond}, {0.999999, 4 * time.Second}} {
		if got := jitter(d, c.r); got < c.want-time.Millisecond || got > c.want {
			t.Errorf("jitter(%v, %v) = %v, want %v", d, c.r, got, c.want)
		}
	}
}

func TestConfig(t *testing.T) {
	ok := Config{LocalAS: 64512, RouterID: idA, PeerAddr: loopback}
	d := ok.withDefaults()
	if d.PeerPort != 179 || d.HoldTime != 90*time.Second || d.ConnectRetry != 5*time.Second ||
		d.SendHoldTime != 8*time.Minute || len(d.Families) != 2 {
		t.Errorf("defaults %+v", d)
	}
	if d := (Config{HoldTime: 5 * time.Minute}).withDefaults(); d.SendHoldTime != 10*time.Minute {
		t.Errorf("send hold for a 5 min hold time: %v, want 10m (RFC 9687)", d.SendHoldTime)
	}
	bad := []func(*Config){
		func(c *Config) { c.LocalAS = 0 },
		func(c *Config) { c.RouterID = netip.Addr{} },
		func(c *Config) { c.RouterID = netip.MustParseAddr("2001:db8::1") },
		func(c *Config) { c.RouterID = netip.IPv4Unspecified() },
		func(c *Config) { c.PeerAddr = netip.Addr{} },
		func(c *Config) { c.LocalAddr = netip.MustParseAddr("2001:db8::1") },
		func(c *Config) { c.HoldTime = 2 * time.Second },
		func(c *Config) { c.HoldTime = 70000 * time.Second },
		func(c *Config) { c.ConnectRetry = -1 },
		func(c *Config) { c.Password = string(make([]byte, 81)) },
		func(c *Config) { c.Families = []wire.Family{{AFI: 25, SAFI: 70}} },
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, f := range bad {
		c := ok
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

func TestTTL(t *testing.T) {
	cases := []struct {
		cfg         Config
		ttl, minTTL int
	}{
		{Config{LocalAS: 1, PeerAS: 1}, 0, 0},                                        // iBGP: system default
		{Config{LocalAS: 1, PeerAS: 0}, 0, 0},                                        // unknown AS
		{Config{LocalAS: 1, PeerAS: 2}, 1, 0},                                        // eBGP: one hop
		{Config{LocalAS: 1, PeerAS: 2, MultihopTTL: 5}, 5, 0},                        // eBGP multihop
		{Config{LocalAS: 1, PeerAS: 2, TTLSecurity: true}, 255, 255},                 // GTSM, direct
		{Config{LocalAS: 1, PeerAS: 1, TTLSecurity: true, MultihopTTL: 3}, 255, 253}, // GTSM, 3 hops
	}
	for i, c := range cases {
		if ttl, minTTL := c.cfg.ttl(); ttl != c.ttl || minTTL != c.minTTL {
			t.Errorf("case %d: ttl %d min %d, want %d %d", i, ttl, minTTL, c.ttl, c.minTTL)
		}
	}
}

func TestMD5Sig(t *testing.T) {
	cases := []struct {
		prefix string
		v6sock bool
		family uint16
		opt    int
		plen   uint8
		addrAt int
		addr   []byte
	}{
		{"198.51.100.7/32", false, unix.AF_INET, unix.TCP_MD5SIG, 0, 2, []byte{198, 51, 100, 7}},
		{"198.51.100.0/24", false, unix.AF_INET, unix.TCP_MD5SIG_EXT, 24, 2, []byte{198, 51, 100, 0}},
		{"198.51.100.7/32", true, unix.AF_INET6, unix.TCP_MD5SIG, 0, 6, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7}},
		{"198.51.100.0/24", true, unix.AF_INET6, unix.TCP_MD5SIG_EXT, 120, 6, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 0}},
		{"2001:db8::/32", true, unix.AF_INET6, unix.TCP_MD5SIG_EXT, 32, 6, []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
	}
	for _, c := range cases {
		sig, opt := md5Sig(netip.MustParsePrefix(c.prefix), "key", c.v6sock)
		if sig.Addr.Family != c.family || opt != c.opt || sig.Prefixlen != c.plen || sig.Keylen != 3 ||
			string(sig.Key[:3]) != "key" || !slices.Equal(sig.Addr.Data[c.addrAt:c.addrAt+len(c.addr)], c.addr) {
			t.Errorf("%s (v6 socket %v): %+v opt %d", c.prefix, c.v6sock, sig, opt)
		}
		if (c.plen != 0) != (sig.Flags == unix.TCP_MD5SIG_FLAG_PREFIX) {
			t.Errorf("%s: flags %d", c.prefix, sig.Flags)
		}
	}
}

func TestCheckUpdates(t *testing.T) {
	two := append(updates(t, 1, wire.Options{}), updates(t, 2, wire.Options{})...)
	if err := checkUpdates(two, &wire.Options{}, false); err != nil {
		t.Errorf("two UPDATEs: %v", err)
	}
	rr := wire.AppendRouteRefresh(nil, &wire.RouteRefresh{Family: wire.IPv4Unicast})
	if err := checkUpdates(rr, &wire.Options{}, true); err != nil {
		t.Errorf("ROUTE-REFRESH with refresh negotiated: %v", err)
	}
	if err := checkUpdates(rr, &wire.Options{}, false); err == nil {
		t.Errorf("ROUTE-REFRESH accepted without refresh negotiated")
	}
	if m, u := countMessages(append(two, wire.AppendKeepalive(nil)...), 0, 0); m != 3 || u != 2 {
		t.Errorf("countMessages = %d, %d", m, u)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"keepalive": wire.AppendKeepalive(nil),
		"cut":       two[:len(two)-1],
		"garbage":   make([]byte, 30),
	} {
		if err := checkUpdates(b, &wire.Options{}, true); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestNotificationFor(t *testing.T) {
	mp := wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseMaxPrefixes}
	if n := notificationFor(&NotificationError{Notification: mp}); n.Code != mp.Code || n.Subcode != mp.Subcode {
		t.Errorf("carried: %v", n)
	}
	we := &wire.Error{Action: wire.SessionReset, Code: wire.ErrCodeUpdate, Subcode: wire.ErrSubMalformedASPath}
	if n := notificationFor(errors.Join(errors.New("x"), we)); n.Code != wire.ErrCodeUpdate || n.Subcode != wire.ErrSubMalformedASPath {
		t.Errorf("wire error: %v", n)
	}
	n := notificationFor(errors.New("too many routes"))
	if msg, ok := n.ShutdownMessage(); !ok || msg != "too many routes" || n.Subcode != wire.CeaseAdminReset {
		t.Errorf("plain error: %v", &n)
	}
	bad := &wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseAdminShutdown, Data: []byte{2, 0xff, 0xfe}}
	if s := describe(bad); s != "Cease / Administrative Shutdown (malformed shutdown communication 02fffe)" {
		t.Errorf("describe: %s", s)
	}
}
