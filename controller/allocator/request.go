package allocator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// query is a validated request with what follows from it.
type query struct {
	*Request
	// fams are the families the Service may have addresses of, primary
	// first: Families[0] for SingleStack, Families for PreferDualStack, both
	// for RequireDualStack.
	fams []Family
	// plans are the family sets tried in turn, each from one pool.
	plans [][]Family
}

// prepare validates the request on its own, before any pool is looked at.
func prepare(req *Request) (*query, *Error) {
	if req.Key.Name == "" {
		return nil, fail(InvalidRequest, "the Service has no name")
	}
	if err := checkAddrs(req.Addresses); err != nil {
		return nil, err
	}
	fams := slices.Clone(req.Families)
	if len(fams) == 0 {
		for _, a := range req.Addresses {
			fams = append(fams, FamilyOf(a))
		}
	}
	if len(fams) == 0 {
		fams = []Family{IPv4}
	}
	if len(fams) > 2 || (len(fams) == 2 && fams[0] == fams[1]) || slices.ContainsFunc(fams, func(f Family) bool { return f != IPv4 && f != IPv6 }) {
		return nil, fail(InvalidRequest, "ipFamilies %v: want one or two distinct families", fams)
	}
	q := &query{Request: req}
	switch req.Policy {
	case SingleStack:
		q.fams = fams[:1]
		q.plans = [][]Family{q.fams}
	case PreferDualStack:
		q.fams = fams
		q.plans = [][]Family{fams}
		if len(fams) == 2 {
			q.plans = append(q.plans, fams[:1], fams[1:])
		}
	case RequireDualStack:
		q.fams = fams
		if len(fams) == 1 {
			q.fams = append(fams, fams[0].other())
		}
		q.plans = [][]Family{q.fams}
	default:
		return nil, fail(InvalidRequest, "unknown ipFamilyPolicy %d", req.Policy)
	}
	for _, a := range req.Addresses {
		if !slices.Contains(q.fams, FamilyOf(a)) {
			return nil, fail(WrongFamily, "requested address %s is %s, but the Service's families under %s are %v",
				a, FamilyOf(a), req.Policy, q.fams)
		}
	}
	if req.Policy == RequireDualStack && len(req.Addresses) == 1 {
		return nil, fail(WrongFamily, "RequireDualStack needs an IPv4 and an IPv6 address, but only %s is requested", req.Addresses[0])
	}
	return q, nil
}

// checkAddrs validates requested (or restored) addresses: at most one per
// family, none malformed.
func checkAddrs(addrs []netip.Addr) *Error {
	if len(addrs) > 2 {
		return fail(InvalidRequest, "%d addresses requested; at most one per family", len(addrs))
	}
	for i, a := range addrs {
		if err := (lbmodel.Range{First: a, Last: a}).Validate(); err != nil {
			return fail(InvalidRequest, "requested address %q: %v", a, err)
		}
		if i == 1 && FamilyOf(addrs[0]) == FamilyOf(a) {
			return fail(InvalidRequest, "%s and %s are both %s; at most one per family", addrs[0], a, FamilyOf(a))
		}
	}
	return nil
}

// inFamilyOrder returns addrs ordered as fams (each family at most once).
func inFamilyOrder(fams []Family, addrs []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(addrs))
	for _, f := range fams {
		for _, a := range addrs {
			if FamilyOf(a) == f {
				out = append(out, a)
			}
		}
	}
	return out
}

// canShare reports whether the requesting Service may hold an address
// together with o: both opted in with the same sharing key, their
// externalTrafficPolicy is the same (a node announces the address for Local
// Services only where their pods run, so differing policies would announce
// it from different node sets), Local ones select the same pods
// (lbmodel.SamePods, for the same reason) and no protocol/port is used by
// both.
func (q *query) canShare(o *service) bool { return q.shareProblem(o) == "" }

// shareProblem says why the requesting Service may not share with o, or "".
func (q *query) shareProblem(o *service) string {
	switch {
	case q.SharingKey == "" || o.sharingKey == "":
		return "sharing needs the allow-shared-ip annotation on both Services"
	case q.SharingKey != o.sharingKey:
		return fmt.Sprintf("their sharing keys differ (%q, %q)", q.SharingKey, o.sharingKey)
	case q.TrafficPolicy != o.etp:
		return fmt.Sprintf("their externalTrafficPolicy differs (%s, %s)", q.TrafficPolicy, o.etp)
	case q.TrafficPolicy == lbmodel.Local && !lbmodel.SamePods(q.Selector, o.selector):
		return fmt.Sprintf("both have externalTrafficPolicy Local but select different pods (Service %s: %s; Service %s: %s), "+
			"so a node with only one's pods would attract the other's traffic and drop it",
			q.Key, describeSelector(q.Selector), o.key, describeSelector(o.selector))
	}
	var clash []string
	for _, p := range q.Ports {
		if slices.Contains(o.ports, p) && !slices.Contains(clash, p.String()) {
			clash = append(clash, p.String())
		}
	}
	if len(clash) > 0 {
		return "both use port " + strings.Join(clash, ", ")
	}
	return ""
}

func describeSelector(sel string) string {
	if sel == "" {
		return "no selector"
	}
	return "selector " + sel
}
