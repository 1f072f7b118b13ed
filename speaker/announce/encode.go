package announce

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/bgplb/bgplb/bgp/wire"
)

const (
	// sendChunk is the size at which built messages are handed to the
	// session: big enough that a full table takes few queue slots (the
	// session's keepalives share that queue), small enough that encoding
	// the next chunk overlaps with writing this one.
	sendChunk = 256 << 10
	// chunkPrefixes bounds the prefixes packed per Encoder call, so a group
	// of a million routes is still sent in chunks.
	chunkPrefixes = 8192
)

// sessionParams is what building UPDATEs needs to know about the session.
type sessionParams struct {
	localAS  uint32
	external bool
	tx       wire.Options
}

// builder turns changes into UPDATE messages: withdrawals first, one family
// at a time, then announcements grouped by path, as many prefixes per
// message as fit. It hands full chunks to emit, which takes ownership of
// them (session.Peer.Send forbids reusing a sent buffer). Not safe for
// concurrent use; its scratch space is reused from call to call.
type builder struct {
	enc    wire.Encoder
	params sessionParams
	emit   func([]byte, int) error

	buf    []byte
	msgs   int // messages in buf
	attrs  wire.Attrs
	asPath wire.ASPath // [LocalAS], for external peers
	nlri   []wire.NLRI
	groups []group
	index  map[groupKey]int
	// failed collects announcements whose attributes cannot be encoded.
	failed []SkippedRoute
}

// groupKey identifies a group. The same path may serve both families (an
// IPv4 route over an IPv6 next hop), so the family is part of it.
type groupKey struct {
	path path
	v6   bool
}

// group is the prefixes of one family sharing one path.
type group struct {
	groupKey
	nlri []wire.NLRI
}

// newBuilder returns a builder for a session; emit receives each chunk and
// the number of messages in it.
func newBuilder(p sessionParams, emit func(b []byte, msgs int) error) *builder {
	b := &builder{enc: wire.Encoder{Options: p.tx}, params: p, emit: emit, index: make(map[groupKey]int)}
	b.asPath = wire.ASPath{{Type: wire.ASSequence, ASNs: []uint32{p.localAS}}}
	return b
}

// errEncode marks encoding failures, as opposed to emit failures.
var errEncode = errors.New("cannot encode")

// build encodes c and emits it all (the last chunk included). Announcements
// whose attributes cannot be encoded are withdrawn instead and returned in
// b.failed, so the peer never keeps an older path the Adj-RIB-Out no longer
// has.
func (b *builder) build(c *changes) error {
	b.failed = b.failed[:0]
	if err := b.withdraw(c.withdraw); err != nil {
		return err
	}
	b.group(c.announce)
	var bad []netip.Prefix
	for i := range b.groups {
		g := &b.groups[i]
		err := b.reach(g)
		if errors.Is(err, errEncode) {
			for _, n := range g.nlri {
				bad = append(bad, n.Prefix)
				b.failed = append(b.failed, SkippedRoute{Prefix: n.Prefix, Reason: err.Error()})
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		if err := b.withdraw(bad); err != nil {
			return err
		}
	}
	return b.flush()
}

// endOfRIB appends the End-of-RIB marker of each family and emits.
func (b *builder) endOfRIB(fs []wire.Family) error {
	for _, f := range fs {
		b.buf = b.enc.AppendEndOfRIB(b.buf, f)
		b.msgs++
	}
	return b.flush()
}

// group sorts announcements into groups, in the order their paths first
// appear (deterministic for a given input).
func (b *builder) group(as []announcement) {
	for i := range b.groups {
		b.groups[i].nlri = b.groups[i].nlri[:0]
	}
	b.groups = b.groups[:0]
	clear(b.index)
	for _, a := range as {
		k := groupKey{a.path, a.prefix.Addr().Is6()}
		i, ok := b.index[k]
		if !ok {
			i = len(b.groups)
			b.index[k] = i
			if i < cap(b.groups) {
				// Reuse the slot's NLRI slice from an earlier call.
				b.groups = b.groups[:i+1]
				b.groups[i].groupKey = k
			} else {
				b.groups = append(b.groups, group{groupKey: k})
			}
		}
		g := &b.groups[i]
		g.nlri = append(g.nlri, wire.NLRI{Prefix: a.prefix})
	}
}

// withdraw encodes withdrawals, IPv4 in the classic field and IPv6 in
// MP_UNREACH_NLRI.
func (b *builder) withdraw(ps []netip.Prefix) error {
	for _, f := range []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast} {
		b.nlri = b.nlri[:0]
		for _, p := range ps {
			if family(p) == f {
				b.nlri = append(b.nlri, wire.NLRI{Prefix: p})
			}
		}
		for ns := b.nlri; len(ns) > 0; {
			n := min(len(ns), chunkPrefixes)
			var msgs int
			var err error
			if b.buf, msgs, err = b.enc.AppendWithdraw(b.buf, f, ns[:n]); err != nil {
				return fmt.Errorf("%w: withdrawing %s: %w", errEncode, f, err)
			}
			b.msgs += msgs
			ns = ns[n:]
			if err := b.maybeFlush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// reach encodes one group's announcements.
func (b *builder) reach(g *group) error {
	f := wire.IPv4Unicast
	if g.v6 {
		f = wire.IPv6Unicast
	}
	b.setAttrs(g.path.attrs.Value())
	for ns := g.nlri; len(ns) > 0; {
		n := min(len(ns), chunkPrefixes)
		start := len(b.buf)
		buf, msgs, err := b.enc.AppendReach(b.buf, f, g.path.nextHop, netip.Addr{}, &b.attrs, ns[:n])
		if err != nil {
			b.buf = b.buf[:start]
			return fmt.Errorf("%w: %w", errEncode, err)
		}
		b.buf, b.msgs = buf, b.msgs+msgs
		ns = ns[n:]
		if err := b.maybeFlush(); err != nil {
			return err
		}
	}
	return nil
}

// setAttrs fills b.attrs for a, reusing its slices.
func (b *builder) setAttrs(a routeAttrs) {
	comms, large, ext := b.attrs.Communities[:0], b.attrs.LargeCommunities[:0], b.attrs.ExtCommunities[:0]
	b.attrs = wire.Attrs{Origin: wire.OriginIGP}
	b.attrs.Set(wire.AttrOrigin)
	// AS_PATH is mandatory: empty to an internal peer (RFC 4271 §5.1.2).
	b.attrs.Set(wire.AttrASPath)
	if b.params.external {
		b.attrs.ASPath = b.asPath
	} else {
		b.attrs.LocalPref = a.localPref
		b.attrs.Set(wire.AttrLocalPref)
	}
	if b.attrs.Communities = a.appendCommunities(comms); len(b.attrs.Communities) > 0 {
		b.attrs.Set(wire.AttrCommunities)
	}
	if b.attrs.LargeCommunities = a.appendLarge(large); len(b.attrs.LargeCommunities) > 0 {
		b.attrs.Set(wire.AttrLargeCommunity)
	}
	b.attrs.ExtCommunities = ext
	if bw := a.bandwidthValue(); bw > 0 {
		b.attrs.ExtCommunities = append(ext, wire.NewLinkBandwidth(linkBandwidthAS(b.params.localAS), bw, false))
		b.attrs.Set(wire.AttrExtCommunities)
	}
}

// linkBandwidthAS is the AS in our link-bandwidth community: ours, or
// AS_TRANS when it does not fit the two octets the community has.
func linkBandwidthAS(as uint32) uint16 {
	if as > 0xffff {
		return wire.ASTrans
	}
	return uint16(as)
}

func (b *builder) maybeFlush() error {
	if len(b.buf) < sendChunk {
		return nil
	}
	return b.flush()
}

// flush emits what is built; the buffer goes with it. The next one is
// sized after it, so a big sync does not grow each chunk from scratch and a
// small one does not hold a big buffer.
func (b *builder) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	buf, msgs := b.buf, b.msgs
	b.buf, b.msgs = make([]byte, 0, min(max(len(buf)+len(buf)/4, 4096), sendChunk+wire.MaxExtendedLen)), 0
	return b.emit(buf, msgs)
}
