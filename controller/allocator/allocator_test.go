package allocator

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	klabels "k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// step is one call in a scenario. By default it is Allocate(req); with
// release it is Release(req.Key) and got is what was released; with restore
// it is Restore(req, restore). pools, when set, are installed first.
type step struct {
	at      time.Duration // since t0
	pools   []lbmodel.Pool
	req     Request
	release bool
	restore []string

	want   []string // the addresses, in order (or released ones)
	reason Reason   // or the refusal
	msg    string   // a substring the refusal's message must hold
	retry  time.Duration
}

type scenario struct {
	name  string
	hold  time.Duration
	pools []lbmodel.Pool
	steps []step
}

func (sc scenario) run(t *testing.T) {
	t.Helper()
	a, _ := New(Config{HoldDown: sc.hold}, sc.pools) // refused pools are part of some scenarios
	for i, st := range sc.steps {
		if st.pools != nil {
			a.SetPools(st.pools)
		}
		now := t0.Add(st.at)
		var got []netip.Addr
		var err error
		switch {
		case st.release:
			got = a.Release(st.req.Key, now)
		case st.restore != nil:
			var al Allocation
			al, err = a.Restore(st.req, ips(st.restore...), now)
			got = al.Addrs()
		default:
			var al Allocation
			al, err = a.Allocate(st.req, now)
			got = al.Addrs()
		}
		if st.reason != 0 {
			var e *Error
			if !errors.As(err, &e) || e.Reason != st.reason {
				t.Fatalf("step %d (%v): got %v, %v; want %v", i, st.req.Key, got, err, st.reason)
			}
			if !strings.Contains(e.Msg, st.msg) {
				t.Errorf("step %d: message %q lacks %q", i, e.Msg, st.msg)
			}
			if st.retry != 0 && !e.RetryAt.Equal(t0.Add(st.retry)) {
				t.Errorf("step %d: RetryAt %v, want %v", i, e.RetryAt, t0.Add(st.retry))
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d (%v): %v", i, st.req.Key, err)
		}
		if !slices.Equal(got, ips(st.want...)) {
			t.Fatalf("step %d (%v): got %v, want %v", i, st.req.Key, got, st.want)
		}
	}
}

func TestAddressChoice(t *testing.T) {
	for _, sc := range []scenario{{
		name:  "lowest free first, then exhausted",
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.12")},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("b"), want: []string{"203.0.113.11"}},
			{req: rq("c"), want: []string{"203.0.113.12"}},
			{req: rq("d"), reason: PoolExhausted, msg: "no free address for Service default/d in pool p"},
		},
	}, {
		name:  "a freed address is reused lowest first without hold-down",
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.12")},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("b"), want: []string{"203.0.113.11"}},
			{req: rq("c"), want: []string{"203.0.113.12"}},
			{req: rq("b"), release: true, want: []string{"203.0.113.11"}},
			{req: rq("a"), release: true, want: []string{"203.0.113.10"}},
			{req: rq("d"), want: []string{"203.0.113.10"}},
			{req: rq("e"), want: []string{"203.0.113.11"}},
		},
	}, {
		name:  "ranges are tried in address order whatever order they were written in",
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.20-203.0.113.21", "198.51.100.5")},
		steps: []step{
			{req: rq("a"), want: []string{"198.51.100.5"}},
			{req: rq("b"), want: []string{"203.0.113.20"}},
		},
	}, {
		name:  "avoidBuggyIPs skips addresses ending in .255 and .0",
		pools: []lbmodel.Pool{avoid(mkPool("p", "198.51.100.254-198.51.101.1"))},
		steps: []step{
			{req: rq("a"), want: []string{"198.51.100.254"}},
			{req: rq("b"), want: []string{"198.51.101.1"}},
			{req: rq("c"), reason: PoolExhausted},
			{req: rq("d", want("198.51.101.0")), reason: NotInPool, msg: "avoidBuggyIPs"},
		},
	}, {
		name:  "without avoidBuggyIPs .255 and .0 are ordinary",
		pools: []lbmodel.Pool{mkPool("p", "198.51.100.254-198.51.101.1")},
		steps: []step{
			{req: rq("a"), want: []string{"198.51.100.254"}},
			{req: rq("b"), want: []string{"198.51.100.255"}},
			{req: rq("c"), want: []string{"198.51.101.0"}},
		},
	}, {
		name:  "avoidBuggyIPs leaves IPv6 alone",
		pools: []lbmodel.Pool{avoid(mkPool("p", "2001:db8::ff-2001:db8::100"))},
		steps: []step{
			{req: rq("a", fams(IPv6)), want: []string{"2001:db8::ff"}},
			{req: rq("b", fams(IPv6)), want: []string{"2001:db8::100"}},
		},
	}, {
		name: "a huge IPv6 pool allocates from its start",
		pools: []lbmodel.Pool{
			mkPool("p", "2001:db8::/32"),
		},
		steps: []step{
			{req: rq("a", fams(IPv6)), want: []string{"2001:db8::"}},
			{req: rq("b", fams(IPv6)), want: []string{"2001:db8::1"}},
			{req: rq("c", fams(IPv6), want("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")), want: []string{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}},
		},
	}} {
		t.Run(sc.name, sc.run)
	}
}

func TestPoolChoice(t *testing.T) {
	red := lbmodel.ServiceAllocation{Namespaces: []string{"red"}}
	for _, sc := range []scenario{{
		name: "autoAssign false serves only Services that name the pool or an address in it",
		pools: []lbmodel.Pool{
			manual(mkPool("dear", "203.0.113.10-203.0.113.11")),
		},
		steps: []step{
			{req: rq("a"), reason: NoPool, msg: "no pool with autoAssign admits Service default/a"},
			{req: rq("b", fromPool("dear")), want: []string{"203.0.113.10"}},
			{req: rq("c", want("203.0.113.11")), want: []string{"203.0.113.11"}},
		},
	}, {
		name: "set priorities first, lowest first; unset ones after; then by name",
		pools: []lbmodel.Pool{
			mkPool("d-none", "203.0.113.40"),
			prio(0, mkPool("a-unset", "203.0.113.30")),
			prio(2, mkPool("b-two", "203.0.113.20")),
			prio(1, mkPool("c-one", "203.0.113.10")),
		},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("b"), want: []string{"203.0.113.20"}},
			{req: rq("c"), want: []string{"203.0.113.30"}},
			{req: rq("d"), want: []string{"203.0.113.40"}},
			{req: rq("e"), reason: PoolExhausted, msg: "c-one, b-two, a-unset, d-none"},
		},
	}, {
		name: "a named pool is used even when others come first, and must exist",
		pools: []lbmodel.Pool{
			prio(1, mkPool("first", "203.0.113.10-203.0.113.11")),
			mkPool("other", "198.51.100.10-198.51.100.11"),
			{Name: "broken", Ranges: []lbmodel.Range{{First: ip("198.51.100.30"), Last: ip("198.51.100.20")}}},
		},
		steps: []step{
			{req: rq("a", fromPool("other")), want: []string{"198.51.100.10"}},
			{req: rq("b", fromPool("nope")), reason: PoolNotFound, msg: "pool nope does not exist"},
			{req: rq("c", fromPool("broken")), reason: PoolNotFound, msg: "pool broken is refused"},
			{req: rq("d", fromPool("other"), want("203.0.113.10")), reason: NotInPool, msg: "outside pool other (it is in pool first)"},
		},
	}, {
		name:  "namespaces narrow a pool",
		pools: []lbmodel.Pool{withAlloc(mkPool("reds", "203.0.113.10-203.0.113.11"), red)},
		steps: []step{
			{req: rq("a", inNS("blue")), reason: NoPool},
			{req: rq("b", inNS("blue"), fromPool("reds")), reason: PoolNotAllowed, msg: "does not admit Service blue/b"},
			{req: rq("c", inNS("blue"), want("203.0.113.11")), reason: PoolNotAllowed},
			{req: rq("d", inNS("red")), want: []string{"203.0.113.10"}},
		},
	}, {
		name: "a namespace selector admits like a listed namespace; service selectors must also match",
		pools: []lbmodel.Pool{withAlloc(mkPool("p", "203.0.113.10-203.0.113.19"), lbmodel.ServiceAllocation{
			Namespaces:         []string{"red"},
			NamespaceSelectors: []klabels.Selector{sel("team=b")},
			ServiceSelectors:   []klabels.Selector{sel("app in (web,dns)"), sel("tier=edge")},
		})},
		steps: []step{
			{req: rq("a", inNS("red"), labels("app", "dns")), want: []string{"203.0.113.10"}},
			{req: rq("b", inNS("blue"), nsLabels("team", "b"), labels("tier", "edge")), want: []string{"203.0.113.11"}},
			{req: rq("c", inNS("blue"), nsLabels("team", "c"), labels("app", "web")), reason: NoPool},
			{req: rq("d", inNS("red"), labels("app", "db")), reason: NoPool},
			{req: rq("e", inNS("red")), reason: NoPool},
		},
	}, {
		name: "a pool narrowed to a Service's namespace is not preferred for it unless ranked",
		pools: []lbmodel.Pool{
			mkPool("a-open", "198.51.100.10"),
			withAlloc(mkPool("b-reds", "203.0.113.10"), red),
			withAlloc(mkPool("c-reds-ranked", "203.0.113.20"), lbmodel.ServiceAllocation{Priority: 5, Namespaces: []string{"red"}}),
		},
		steps: []step{
			{req: rq("a", inNS("red")), want: []string{"203.0.113.20"}},
			{req: rq("b", inNS("red")), want: []string{"198.51.100.10"}},
			{req: rq("c", inNS("red")), want: []string{"203.0.113.10"}},
		},
	}} {
		t.Run(sc.name, sc.run)
	}
}

func TestRequestedAddresses(t *testing.T) {
	p := mkPool("p", "203.0.113.10-203.0.113.19", "2001:db8::10-2001:db8::1f")
	for _, sc := range []scenario{{
		name:  "outside every pool, or of the wrong family",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a", want("198.51.100.1")), reason: NotInPool, msg: "outside every pool"},
			{req: rq("b", fams(IPv4), want("2001:db8::10")), reason: WrongFamily, msg: "2001:db8::10 is IPv6"},
			{req: rq("c", fams(IPv4, IPv6), policy(PreferDualStack), want("2001:db8::10")), want: []string{"2001:db8::10"}},
			{req: rq("d", want("203.0.113.15")), want: []string{"203.0.113.15"}},
		},
	}, {
		name:  "malformed requests",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a", want("203.0.113.10", "203.0.113.11")), reason: InvalidRequest, msg: "at most one per family"},
			{req: rq("b", want("203.0.113.10", "2001:db8::10", "203.0.113.11")), reason: InvalidRequest},
			{req: rq("c", func(r *Request) { r.Addresses = []netip.Addr{{}} }), reason: InvalidRequest},
			{req: rq("d", want("fe80::1%eth0")), reason: InvalidRequest, msg: "zones"},
			{req: rq("e", want("::ffff:203.0.113.10")), reason: InvalidRequest, msg: "IPv4-mapped"},
			{req: rq("f", fams(IPv4, IPv4)), reason: InvalidRequest},
			{req: rq("g", fams(9)), reason: InvalidRequest},
			{req: rq("h", policy(7)), reason: InvalidRequest},
			{req: Request{}, reason: InvalidRequest},
		},
	}, {
		name:  "two addresses need a dual-stack policy, and RequireDualStack needs two",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a", fams(IPv4, IPv6), want("203.0.113.10", "2001:db8::10")), reason: WrongFamily},
			{req: rq("b", fams(IPv4, IPv6), policy(RequireDualStack), want("203.0.113.10")), reason: WrongFamily, msg: "RequireDualStack"},
			{req: rq("c", fams(IPv4, IPv6), policy(RequireDualStack), want("2001:db8::10", "203.0.113.10")),
				want: []string{"203.0.113.10", "2001:db8::10"}},
		},
	}, {
		name:  "held by a Service that may not share it",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a", share("", "80/TCP")), want: []string{"203.0.113.10"}},
			{req: rq("b", want("203.0.113.10"), share("k", "443/TCP")), reason: InUse, msg: "held by Service default/a"},
			{req: rq("c", share("k", "53/TCP")), want: []string{"203.0.113.11"}},
			{req: rq("d", want("203.0.113.11"), share("k", "53/TCP", "53/UDP")), reason: InUse, msg: "both use port 53/TCP"},
			{req: rq("e", want("203.0.113.11"), share("other", "53/UDP")), reason: InUse, msg: "sharing keys differ"},
			{req: rq("f", want("203.0.113.11"), share("k", "53/UDP"), local), reason: InUse, msg: "externalTrafficPolicy differs"},
			{req: rq("g", want("203.0.113.11"), share("k", "53/UDP")), want: []string{"203.0.113.11"}},
			{req: rq("h", want("203.0.113.11"), share("k", "53/UDP")), reason: InUse, msg: "default/g"},
		},
	}, {
		name:  "Local Services share only when they select the same pods",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a", share("k", "53/UDP"), local, selecting("app=dns")), want: []string{"203.0.113.10"}},
			{req: rq("b", want("203.0.113.10"), share("k", "53/TCP"), local, selecting("app=other")), reason: InUse,
				msg: "select different pods (Service default/b: selector app=other; Service default/a: selector app=dns)"},
			{req: rq("c", want("203.0.113.10"), share("k", "53/TCP"), local), reason: InUse,
				msg: "Service default/c: no selector; Service default/a: selector app=dns"},
			{req: rq("d", want("203.0.113.10"), share("k", "53/TCP"), local, selecting("app=dns")), want: []string{"203.0.113.10"}},
			// Automatic: the sharer selecting other pods gets another address.
			{req: rq("e", share("k", "853/TCP"), local, selecting("app=other")), want: []string{"203.0.113.11"}},
			{req: rq("f", share("k", "853/TCP"), local, selecting("app=dns")), want: []string{"203.0.113.10"}},
			// Two Local Services without a selector do not share either.
			{req: rq("g", want("203.0.113.12"), share("m", "80/TCP"), local), want: []string{"203.0.113.12"}},
			{req: rq("h", want("203.0.113.12"), share("m", "443/TCP"), local), reason: InUse, msg: "no selector"},
			// Cluster Services need not select the same pods.
			{req: rq("i", want("203.0.113.13"), share("n", "80/TCP"), selecting("app=x")), want: []string{"203.0.113.13"}},
			{req: rq("j", want("203.0.113.13"), share("n", "443/TCP"), selecting("app=y")), want: []string{"203.0.113.13"}},
		},
	}, {
		name:  "hold-down does not apply to an address asked for by name",
		hold:  time.Minute,
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("a"), release: true, want: []string{"203.0.113.10"}},
			{req: rq("b"), want: []string{"203.0.113.11"}},
			{req: rq("c", want("203.0.113.10")), want: []string{"203.0.113.10"}},
		},
	}} {
		t.Run(sc.name, sc.run)
	}
}

func TestSharing(t *testing.T) {
	for _, sc := range []scenario{{
		name:  "Services with one key join an address when their ports differ",
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.19")},
		steps: []step{
			{req: rq("free"), want: []string{"203.0.113.10"}},
			{req: rq("dns-tcp", share("dns", "53/TCP")), want: []string{"203.0.113.11"}},
			{req: rq("gap"), want: []string{"203.0.113.12"}},
			{req: rq("free"), release: true, want: []string{"203.0.113.10"}},
			// The shared address wins over the lower free one.
			{req: rq("dns-udp", share("dns", "53/UDP")), want: []string{"203.0.113.11"}},
			{req: rq("dns-tcp2", share("dns", "53/TCP")), want: []string{"203.0.113.10"}},
			{req: rq("web", share("dns", "80/TCP"), local), want: []string{"203.0.113.13"}},
		},
	}, {
		name:  "an address stays held while one sharer holds it, then is held down",
		hold:  time.Minute,
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.19")},
		steps: []step{
			{req: rq("a", share("k", "53/TCP")), want: []string{"203.0.113.10"}},
			{req: rq("b", share("k", "53/UDP")), want: []string{"203.0.113.10"}},
			{req: rq("a"), release: true, want: []string{"203.0.113.10"}},
			{req: rq("c"), want: []string{"203.0.113.11"}},
			{req: rq("b"), release: true, want: []string{"203.0.113.10"}},
			{req: rq("d"), want: []string{"203.0.113.12"}},
			{at: time.Minute, req: rq("e"), want: []string{"203.0.113.10"}},
		},
	}, {
		name:  "a Service whose ports come to clash moves; the other stays",
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.19")},
		steps: []step{
			{req: rq("a", share("k", "53/TCP")), want: []string{"203.0.113.10"}},
			{req: rq("b", share("k", "53/UDP")), want: []string{"203.0.113.10"}},
			{req: rq("b", share("k", "53/UDP", "53/TCP")), want: []string{"203.0.113.11"}},
			{req: rq("a", share("k", "53/TCP")), want: []string{"203.0.113.10"}},
			{req: rq("b", share("k", "53/UDP")), want: []string{"203.0.113.11"}}, // stable: no reason to move back
		},
	}} {
		t.Run(sc.name, sc.run)
	}
}

func TestDualStack(t *testing.T) {
	v4 := mkPool("v4", "203.0.113.10-203.0.113.11")
	dual := mkPool("dual", "198.51.100.10-198.51.100.11", "2001:db8::10-2001:db8::11")
	v6 := mkPool("v6", "2001:db8:1::10")
	for _, sc := range []scenario{{
		name:  "SingleStack takes the primary family",
		pools: []lbmodel.Pool{dual},
		steps: []step{
			{req: rq("a", fams(IPv6, IPv4)), want: []string{"2001:db8::10"}},
			{req: rq("b"), want: []string{"198.51.100.10"}},
		},
	}, {
		name:  "RequireDualStack needs one pool with both families",
		pools: []lbmodel.Pool{prio(1, v4), v6},
		steps: []step{
			{req: rq("a", fams(IPv4, IPv6), policy(RequireDualStack)), reason: FamilyUnavailable, msg: "both IPv4 and IPv6"},
			{pools: []lbmodel.Pool{prio(1, v4), v6, dual}, req: rq("a", fams(IPv6, IPv4), policy(RequireDualStack)),
				want: []string{"2001:db8::10", "198.51.100.10"}},
			{req: rq("b", fams(IPv4), policy(RequireDualStack)), want: []string{"198.51.100.11", "2001:db8::11"}},
			{req: rq("c", fams(IPv4, IPv6), policy(RequireDualStack)), reason: PoolExhausted},
		},
	}, {
		name:  "PreferDualStack prefers a dual pool over a higher-ranked single one, then falls back",
		pools: []lbmodel.Pool{prio(1, v4), dual},
		steps: []step{
			{req: rq("a", fams(IPv4, IPv6), policy(PreferDualStack)), want: []string{"198.51.100.10", "2001:db8::10"}},
			{req: rq("b", fams(IPv4, IPv6), policy(PreferDualStack)), want: []string{"198.51.100.11", "2001:db8::11"}},
			{req: rq("c", fams(IPv4, IPv6), policy(PreferDualStack)), want: []string{"203.0.113.10"}},
			{req: rq("d", fams(IPv4), policy(PreferDualStack)), want: []string{"203.0.113.11"}},
			{req: rq("e", fams(IPv6, IPv4), policy(PreferDualStack)), reason: PoolExhausted},
		},
	}, {
		name:  "PreferDualStack falls back to the second family",
		pools: []lbmodel.Pool{v6},
		steps: []step{
			{req: rq("a", fams(IPv4, IPv6), policy(PreferDualStack)), want: []string{"2001:db8:1::10"}},
			{req: rq("b", fams(IPv4), policy(PreferDualStack)), reason: FamilyUnavailable, msg: "has IPv4 addresses"},
			{req: rq("c", fams(IPv4)), reason: FamilyUnavailable},
		},
	}} {
		t.Run(sc.name, sc.run)
	}
}

func TestHoldDown(t *testing.T) {
	for _, sc := range []scenario{{
		name:  "strict: a full pool refuses and says when to retry",
		hold:  10 * time.Second,
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10")},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{at: 2 * time.Second, req: rq("a"), release: true, want: []string{"203.0.113.10"}},
			{at: 5 * time.Second, req: rq("b"), reason: PoolExhausted, retry: 12 * time.Second, msg: "held down"},
			{at: 12*time.Second - 1, req: rq("b"), reason: PoolExhausted},
			{at: 12 * time.Second, req: rq("b"), want: []string{"203.0.113.10"}},
		},
	}, {
		name:  "a Service gets back what it released, before a lower free address",
		hold:  10 * time.Second,
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.19")},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("b"), want: []string{"203.0.113.11"}},
			{req: rq("a"), release: true, want: []string{"203.0.113.10"}},
			{at: 10 * time.Second, req: rq("b"), release: true, want: []string{"203.0.113.11"}},
			{at: 12 * time.Second, req: rq("b"), want: []string{"203.0.113.11"}},
			{at: 12 * time.Second, req: rq("c"), want: []string{"203.0.113.10"}},
		},
	}, {
		name:  "an address given up by a change is held down too",
		hold:  10 * time.Second,
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.19")},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("a", want("203.0.113.15")), want: []string{"203.0.113.15"}},
			{req: rq("b"), want: []string{"203.0.113.11"}},
			{at: 10 * time.Second, req: rq("c"), want: []string{"203.0.113.10"}},
		},
	}, {
		name:  "time does not run backwards",
		hold:  10 * time.Second,
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10")},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("a"), release: true, want: []string{"203.0.113.10"}},
			{at: 10 * time.Second, req: rq("b"), want: []string{"203.0.113.10"}},
			{at: 10 * time.Second, req: rq("b"), release: true, want: []string{"203.0.113.10"}},
			// An earlier now is the latest seen: the hold-down runs from
			// 10s, not from 1s.
			{at: time.Second, req: rq("c"), reason: PoolExhausted, retry: 20 * time.Second},
		},
	}} {
		t.Run(sc.name, sc.run)
	}
}

func TestStabilityUnderPoolChanges(t *testing.T) {
	p := mkPool("p", "203.0.113.10-203.0.113.19")
	for _, sc := range []scenario{{
		name:  "the same request keeps its addresses",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("x"), want: []string{"203.0.113.10"}},
			{req: rq("a"), want: []string{"203.0.113.11"}},
			{req: rq("x"), release: true, want: []string{"203.0.113.10"}},
			{req: rq("a"), want: []string{"203.0.113.11"}},
		},
	}, {
		name:  "a better-ranked pool appearing later moves nobody",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{pools: []lbmodel.Pool{p, prio(1, mkPool("better", "198.51.100.10-198.51.100.19"))}, req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("b"), want: []string{"198.51.100.10"}},
		},
	}, {
		name:  "a pool shrinking under a Service does not move it",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("b", fromPool("p")), want: []string{"203.0.113.11"}},
			{req: rq("c", want("203.0.113.12")), want: []string{"203.0.113.12"}},
			{pools: []lbmodel.Pool{mkPool("p", "203.0.113.15-203.0.113.19")}, req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("b", fromPool("p")), want: []string{"203.0.113.11"}},
			{req: rq("c", want("203.0.113.12")), want: []string{"203.0.113.12"}},
			{pools: []lbmodel.Pool{}, req: rq("b", fromPool("p")), want: []string{"203.0.113.11"}},
			{req: rq("c", want("203.0.113.12"), fromPool("p")), want: []string{"203.0.113.12"}},
			{req: rq("d", want("203.0.113.13")), reason: NotInPool},
		},
	}, {
		name:  "a Service narrowed out of its pool keeps its address",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a", inNS("blue")), want: []string{"203.0.113.10"}},
			{pools: []lbmodel.Pool{withAlloc(p, lbmodel.ServiceAllocation{Namespaces: []string{"red"}})}, req: rq("a", inNS("blue")), want: []string{"203.0.113.10"}},
			{req: rq("a", inNS("blue"), want("203.0.113.10")), want: []string{"203.0.113.10"}},
			{req: rq("b", inNS("blue"), want("203.0.113.11")), reason: PoolNotAllowed},
		},
	}} {
		t.Run(sc.name, sc.run)
	}
}

func TestStabilityUnderRequestChanges(t *testing.T) {
	p := mkPool("p", "203.0.113.10-203.0.113.19")
	for _, sc := range []scenario{{
		name:  "changing the requested address, pool or family moves the Service",
		pools: []lbmodel.Pool{p, mkPool("q", "198.51.100.10-198.51.100.19", "2001:db8::10-2001:db8::1f")},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("a", want("203.0.113.14")), want: []string{"203.0.113.14"}},
			{req: rq("a"), want: []string{"203.0.113.14"}},
			{req: rq("a", fromPool("q")), want: []string{"198.51.100.10"}},
			{req: rq("a", fams(IPv6)), want: []string{"2001:db8::10"}},
		},
	}, {
		name:  "a failed request changes nothing",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("a", want("198.51.100.1")), reason: NotInPool},
			{req: rq("b"), want: []string{"203.0.113.11"}},
			{req: rq("a"), want: []string{"203.0.113.10"}},
		},
	}, {
		name:  "dual stack: gaining a family never moves the one held; dropping one releases it",
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.19")},
		steps: []step{
			{req: rq("a", fams(IPv4, IPv6), policy(PreferDualStack)), want: []string{"203.0.113.10"}},
			{pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.19"), prio(1, mkPool("dual", "198.51.100.10", "2001:db8::10"))},
				req: rq("a", fams(IPv4, IPv6), policy(PreferDualStack)), want: []string{"203.0.113.10"}},
			{pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.19", "2001:db8:1::/64")},
				req: rq("a", fams(IPv4, IPv6), policy(PreferDualStack)), want: []string{"203.0.113.10", "2001:db8:1::"}},
			{req: rq("a", fams(IPv6, IPv4)), want: []string{"2001:db8:1::"}},
		},
	}, {
		name:  "RequireDualStack moves both when its pool cannot complete the pair",
		pools: []lbmodel.Pool{mkPool("p", "203.0.113.10-203.0.113.19"), mkPool("q", "198.51.100.10", "2001:db8::10")},
		steps: []step{
			{req: rq("a", fromPool("q")), want: []string{"198.51.100.10"}},
			{req: rq("b"), want: []string{"203.0.113.10"}},
			{req: rq("b", fams(IPv4, IPv6), policy(RequireDualStack)), reason: PoolExhausted},
			{req: rq("a"), release: true, want: []string{"198.51.100.10"}},
			{req: rq("b", fams(IPv4, IPv6), policy(RequireDualStack)), want: []string{"198.51.100.10", "2001:db8::10"}},
		},
	}} {
		t.Run(sc.name, sc.run)
	}
}

func TestRestore(t *testing.T) {
	p := mkPool("p", "203.0.113.10-203.0.113.19")
	for _, sc := range []scenario{{
		name:  "restored addresses are kept and never handed out again",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a"), restore: []string{"203.0.113.10"}, want: []string{"203.0.113.10"}},
			{req: rq("b", share("k", "53/TCP")), restore: []string{"203.0.113.12"}, want: []string{"203.0.113.12"}},
			{req: rq("c"), restore: []string{"198.51.100.1"}, want: []string{"198.51.100.1"}},
			{req: rq("d"), want: []string{"203.0.113.11"}},
			{req: rq("e"), want: []string{"203.0.113.13"}},
			{req: rq("a"), want: []string{"203.0.113.10"}},
			{req: rq("c"), want: []string{"198.51.100.1"}},
		},
	}, {
		name:  "a restore that would break sharing is refused",
		pools: []lbmodel.Pool{p},
		steps: []step{
			{req: rq("a", share("k", "53/TCP")), restore: []string{"203.0.113.10"}, want: []string{"203.0.113.10"}},
			{req: rq("b", share("k", "53/TCP")), restore: []string{"203.0.113.10"}, reason: InUse},
			{req: rq("c", share("k", "53/UDP")), restore: []string{"203.0.113.10"}, want: []string{"203.0.113.10"}},
			{req: rq("d"), restore: []string{"203.0.113.10", "203.0.113.11"}, reason: InvalidRequest},
		},
	}} {
		t.Run(sc.name, sc.run)
	}
}

func TestOrphans(t *testing.T) {
	a := newAlloc(t, Config{}, mkPool("p", "203.0.113.10-203.0.113.19"))
	for i, name := range []string{"a", "b", "c"} {
		if _, err := a.Allocate(rq(name, inNS("ns")), t0); err != nil {
			t.Fatal(i, err)
		}
	}
	if _, err := a.Restore(rq("d"), ips("198.51.100.1"), t0); err != nil {
		t.Fatal(err)
	}
	a.SetPools([]lbmodel.Pool{
		avoid(mkPool("p", "203.0.113.0-203.0.113.9", "203.0.113.11-203.0.113.19")),
		createdAt(mkPool("late", "203.0.113.12-203.0.113.20"), 1), // overlaps the older p: refused
	})
	want := []Orphan{
		{Key: lbmodel.Key{Namespace: "default", Name: "d"}, Addr: ip("198.51.100.1"), Why: "it lies outside every pool"},
		{Key: lbmodel.Key{Namespace: "ns", Name: "a"}, Addr: ip("203.0.113.10"), Why: "it lies outside every pool"},
	}
	if got := a.Orphans(); !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	a.SetPools([]lbmodel.Pool{
		avoid(mkPool("p", "203.0.113.0-203.0.113.9", "203.0.113.12-203.0.113.19")),
		createdAt(mkPool("late", "203.0.113.10-203.0.113.12"), 1),
	})
	want = []Orphan{
		{Key: lbmodel.Key{Namespace: "default", Name: "d"}, Addr: ip("198.51.100.1"), Why: "it lies outside every pool"},
		{Key: lbmodel.Key{Namespace: "ns", Name: "a"}, Addr: ip("203.0.113.10"), Why: "it lies in pool late, which is refused: 203.0.113.10-203.0.113.12 overlaps 203.0.113.12-203.0.113.19 of pool p"},
		{Key: lbmodel.Key{Namespace: "ns", Name: "b"}, Addr: ip("203.0.113.11"), Why: "it lies in pool late, which is refused: 203.0.113.10-203.0.113.12 overlaps 203.0.113.12-203.0.113.19 of pool p"},
	}
	if got := a.Orphans(); !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	// The pure function over plain values says the same.
	if got := Orphans([]lbmodel.Pool{mkPool("p", "198.51.100.0/24")}, a.Assignments()); len(got) != 3 ||
		got[0].Addr != ip("203.0.113.10") || got[1].Addr != ip("203.0.113.11") || got[2].Addr != ip("203.0.113.12") {
		t.Fatalf("Orphans: %v", got)
	}
	if got := Orphans([]lbmodel.Pool{avoid(mkPool("p", "198.51.100.0/24"))}, []Assignment{{Key: lbmodel.Key{Namespace: "x", Name: "y"},
		Addresses: []Address{{Addr: ip("198.51.100.0")}}}}); len(got) != 1 || !strings.Contains(got[0].Why, "avoidBuggyIPs") {
		t.Fatalf("Orphans: %v", got)
	}
}

func TestStats(t *testing.T) {
	a := newAlloc(t, Config{HoldDown: time.Minute},
		avoid(mkPool("v4", "198.51.100.0/24", "203.0.113.255-203.0.113.255")),
		mkPool("v6", "2001:db8::/64", "2001:db8:1::/120"),
		mkPool("all", "2001:db8:8000::/33"),
	)
	for _, name := range []string{"a", "b", "c"} {
		if _, err := a.Allocate(rq(name, fromPool("v4")), t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Allocate(rq("d", fromPool("v6"), fams(IPv6)), t0); err != nil {
		t.Fatal(err)
	}
	a.Release(lbmodel.Key{Namespace: "default", Name: "b"}, t0)
	want := []Stats{
		{Pool: "all", Family: IPv6, Size: ^uint64(0), Available: ^uint64(0)},
		// 256 addresses but .0 and .255; 203.0.113.255 counts nothing.
		{Pool: "v4", Family: IPv4, Size: 254, Assigned: 2, HoldDown: 1, Available: 251},
		{Pool: "v6", Family: IPv6, Size: ^uint64(0), Assigned: 1, Available: ^uint64(0)},
	}
	if got := a.Stats(t0); !slices.Equal(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	want[1].HoldDown, want[1].Available = 0, 252
	if got := a.Stats(t0.Add(time.Minute)); !slices.Equal(got, want) {
		t.Fatalf("after the hold-down: got %+v\nwant %+v", got, want)
	}
	// Counts follow the pools when they change.
	a.SetPools([]lbmodel.Pool{mkPool("v4", "198.51.100.2-198.51.100.9")})
	if got, want := a.Stats(t0.Add(time.Minute)), []Stats{{Pool: "v4", Family: IPv4, Size: 8, Assigned: 1, Available: 7}}; !slices.Equal(got, want) {
		t.Fatalf("after SetPools: got %+v\nwant %+v", got, want)
	}
}

// The messages are what users read in events and conditions: they name the
// address, the other Service and the rule.
func TestMessages(t *testing.T) {
	a := newAlloc(t, Config{}, mkPool("p", "203.0.113.10"))
	if _, err := a.Allocate(rq("pihole-tcp", share("dns", "53/TCP")), t0); err != nil {
		t.Fatal(err)
	}
	_, err := a.Allocate(rq("pihole-udp", want("203.0.113.10"), share("dns", "53/TCP", "53/UDP")), t0)
	const msg = "InUse: 203.0.113.10 is held by Service default/pihole-tcp and may not be shared: both use port 53/TCP"
	if err == nil || err.Error() != msg {
		t.Fatalf("got %v\nwant %s", err, msg)
	}
	for r := InvalidRequest; r <= FamilyUnavailable; r++ {
		if strings.HasPrefix(r.String(), "Reason(") {
			t.Errorf("reason %d has no name", r)
		}
	}
}
