package l2owner

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
)

// Action is what a node must write for one address lease.
type Action int

const (
	// None: nothing to write.
	None Action = iota
	// Acquire: become the holder (create the lease, or swap its holder).
	Acquire
	// Handover: write the holder To (empty: clear it), after having stopped
	// answering.
	Handover
	// Release: delete the lease held by this node (the address is no longer
	// wanted).
	Release
)

func (a Action) String() string {
	switch a {
	case Acquire:
		return "acquire"
	case Handover:
		return "handover"
	case Release:
		return "release"
	}
	return "none"
}

// Input is one node's view of one address, as plain values.
type Input struct {
	Self string
	Want Want
	// Live maps each live node to the L2 policies its heartbeat publishes.
	// Self is in it only while its own fence holds and it is a candidate
	// (Ready, not excluded).
	Live map[string][]string
	// Holder is the address lease's holder; empty when there is no lease or
	// no holder.
	Holder string
	// Overdue: the holder is live but, in this view, has not been a
	// candidate for longer than a live holder needs to hand over. Only then
	// may another node take the address from a live holder: taking it
	// earlier would make two nodes answer until the holder's watch catches up.
	Overdue bool
	// Fenced: Self is a candidate with SelfPolicies, missing from Live
	// only because its own fence lapsed (or its first renewal is under
	// way). Others may still see it live.
	Fenced       bool
	SelfPolicies []string
}

// Decision is what a node does for one address.
type Decision struct {
	Answer bool   // this node answers ARP/NDP for the address now
	Action Action // what to write
	To     string // the new holder for Handover ("" clears it)
	// Ranked are the candidates, best first.
	Ranked []string
}

// Decide applies the ownership rules to one address. It reads no clock and
// does no I/O.
func Decide(in Input) Decision {
	ranked := Candidates(in.Want, in.Live)
	d := Decision{Ranked: ranked}
	best := ""
	if len(ranked) > 0 {
		best = ranked[0]
	}
	switch in.Holder {
	case in.Self:
		if best == in.Self {
			d.Answer = true
			return d
		}
		if in.Fenced && bestIfLive(in) {
			// A handover to a node that still sees it live would come
			// straight back. It writes nothing; the others take the
			// address once its heartbeat expires.
			return d
		}
		d.Action, d.To = Handover, best
	case "":
		if best == in.Self {
			d.Action = Acquire
		}
	default:
		if best != in.Self {
			return d
		}
		if _, live := in.Live[in.Holder]; !live || (in.Overdue && !slices.Contains(ranked, in.Holder)) {
			d.Action = Acquire
		}
	}
	return d
}

// bestIfLive: Self would rank first were it live.
func bestIfLive(in Input) bool {
	live := maps.Clone(in.Live)
	live[in.Self] = in.SelfPolicies
	r := Candidates(in.Want, live)
	return len(r) > 0 && r[0] == in.Self
}

// Candidates are the live nodes eligible for w, best first by rendezvous
// hashing: each node scores Score(node, addr), highest wins, so each node
// leads for an even share of the addresses and a node that comes or goes
// moves only the addresses it leads.
func Candidates(w Want, live map[string][]string) []string {
	type scored struct {
		node  string
		score uint64
	}
	var c []scored
	for node, policies := range live {
		if w.Nodes != nil && !w.Nodes[node] {
			continue
		}
		if !intersects(policies, w.Policies) {
			continue
		}
		c = append(c, scored{node, Score(node, w.Addr)})
	}
	if len(c) == 0 {
		return nil
	}
	slices.SortFunc(c, func(a, b scored) int {
		if x := cmp.Compare(b.score, a.score); x != 0 {
			return x
		}
		return cmp.Compare(a.node, b.node)
	})
	out := make([]string, len(c))
	for i, s := range c {
		out[i] = s.node
	}
	return out
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// Score is a node's rendezvous weight for addr: FNV-1a over the node name,
// a separator and the address's 16 bytes, then a 64-bit finalizer so that
// names differing in one byte spread over the whole range. It is fixed by
// this code, not seeded: every speaker, whatever its version, must agree.
func Score(node string, addr netip.Addr) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(node); i++ {
		h ^= uint64(node[i])
		h *= prime
	}
	h *= prime // the separator (a zero byte)
	b := addr.Unmap().As16()
	for _, x := range b {
		h ^= uint64(x)
		h *= prime
	}
	return mix(h)
}

// mix is splitmix64's finalizer.
func mix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	return z ^ (z >> 31)
}
