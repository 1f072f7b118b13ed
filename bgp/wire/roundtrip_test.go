package wire

// Property tests: decode(encode(x)) == x for generated values (gen_test.go),
// with a fixed seed, plus the packing properties of Encoder and the 2-octet
// AS transition of RFC 6793.

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// wireAttr is one path attribute as it appears on the wire.
type wireAttr struct {
	Flags uint8
	Type  uint8
	Value []byte
	Raw   []byte // header and value
}

// wireAttrs splits the path attributes field of a whole UPDATE message
// (header included), independently of the decoder. ok is false when the
// framing does not add up.
func wireAttrs(msg []byte) (attrs []wireAttr, ok bool) {
	if len(msg) < minUpdateLen {
		return nil, false
	}
	body := msg[HeaderLen:]
	wl := int(binary.BigEndian.Uint16(body))
	if 4+wl > len(body) {
		return nil, false
	}
	al := int(binary.BigEndian.Uint16(body[2+wl:]))
	if 4+wl+al > len(body) {
		return nil, false
	}
	b := body[4+wl : 4+wl+al]
	for len(b) > 0 {
		if len(b) < 3 {
			return nil, false
		}
		hl, l := 3, int(b[2])
		if b[0]&FlagExtLen != 0 {
			if len(b) < 4 {
				return nil, false
			}
			hl, l = 4, int(binary.BigEndian.Uint16(b[2:]))
		}
		if hl+l > len(b) {
			return nil, false
		}
		attrs = append(attrs, wireAttr{Flags: b[0], Type: b[1], Value: b[hl : hl+l], Raw: b[:hl+l]})
		b = b[hl+l:]
	}
	return attrs, true
}

// findWireAttr returns the first attribute of type t.
func findWireAttr(attrs []wireAttr, t uint8) (wireAttr, bool) {
	for _, a := range attrs {
		if a.Type == t {
			return a, true
		}
	}
	return wireAttr{}, false
}

// splitMessages cuts a buffer of back-to-back messages at their header
// lengths.
func splitMessages(t *testing.T, b []byte, o *Options) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		h, err := ParseHeader(b, o)
		if err != nil {
			t.Fatalf("message %d: %v", len(out), err)
		}
		if int(h.Length) > len(b) {
			t.Fatalf("message %d: length %d, %d bytes left", len(out), h.Length, len(b))
		}
		out = append(out, b[:h.Length])
		b = b[h.Length:]
	}
	return out
}

func TestRoundTripUpdate(t *testing.T) {
	t.Parallel()
	r := newRand(1)
	var d Update // reused on purpose: decoding must not leak state between messages
	var prevClone *Attrs
	var prevView updateView
	counts := map[string]int{}
	const iterations = 3000
	for i := range iterations {
		o := genOptions(r)
		u := genUpdate(r, o)
		want := viewOf(u)
		b, err := AppendUpdate(nil, u, &o)
		if err != nil {
			t.Fatalf("#%d: AppendUpdate: %v", i, err)
		}
		h, err := ParseHeader(b, &o)
		if err != nil || h.Type != TypeUpdate || int(h.Length) != len(b) {
			t.Fatalf("#%d: ParseHeader = %+v, %v; message is %d bytes", i, h, err, len(b))
		}
		if len(b) > o.maxLenFor(TypeUpdate) {
			t.Fatalf("#%d: %d bytes over the limit", i, len(b))
		}
		if chance(r, 1, 4) {
			// A failed or partial decode first: it must leave nothing
			// behind in d for the next one.
			_ = DecodeUpdate(&d, b[HeaderLen:HeaderLen+r.IntN(len(b)-HeaderLen)], &o)
		}
		if err := DecodeUpdate(&d, b[HeaderLen:], &o); err != nil {
			t.Fatalf("#%d (options %+v): DecodeUpdate: %v\nmessage %x", i, o, err, b)
		}
		if got := viewOf(&d); !reflect.DeepEqual(want, got) {
			t.Fatalf("#%d (options %+v): round trip differs:%s", i, o, diffFields(want, got))
		}
		// Re-encoding the decoded UPDATE gives the same bytes.
		if b2, err := AppendUpdate(nil, &d, &o); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("#%d: re-encoding differs (%v):\n%x\n%x", i, err, b, b2)
		}
		// Attrs.Clone shares nothing with the message or with d, which the
		// next decode reuses: check the previous clone now, then scribble
		// over this message and keep a clone of its attributes.
		if prevClone != nil {
			if got := viewOf(&Update{Attrs: *prevClone}); !reflect.DeepEqual(prevView, got) {
				t.Fatalf("#%d: the clone of the previous attributes changed:%s", i, diffFields(prevView, got))
			}
		}
		prevClone = d.Attrs.Clone()
		prevView = viewOf(&Update{Attrs: d.Attrs})
		b2 := bytes.Clone(b)
		clear(b[HeaderLen:])
		b = b2
		m, err := DecodeMessage(b, &o)
		if err != nil {
			t.Fatalf("#%d: DecodeMessage: %v", i, err)
		}
		mu, ok := m.(*Update)
		if !ok || MessageType(m) != TypeUpdate {
			t.Fatalf("#%d: DecodeMessage returned %T", i, m)
		}
		if got := viewOf(mu); !reflect.DeepEqual(want, got) {
			t.Fatalf("#%d: DecodeMessage round trip differs:%s", i, diffFields(want, got))
		}
		if len(b) > MaxLen {
			counts["extended-length"]++
		}
		if !o.AS4 && needsAS4Path(u.Attrs.ASPath) {
			counts["as4-merge"]++
		}
		if u.Attrs.Has(AttrMPReach) {
			counts["mp-reach"]++
		}
		if o.AddPath != 0 {
			counts["add-path"]++
		}
	}
	t.Logf("%d UPDATEs; %v", iterations, counts)
}

func TestRoundTripOpen(t *testing.T) {
	t.Parallel()
	r := newRand(2)
	const iterations = 3000
	var asked, forced int
	for i := range iterations {
		op := genOpen(r)
		var as uint32
		if chance(r, 1, 4) {
			// NewOpen: MyAS is AS_TRANS for a 4-octet AS, and AS() gives
			// the real one back after the round trip.
			as = genASN(r)
			op = NewOpen(as, op.HoldTime, op.ID, op.Caps)
		}
		want := viewOfOpen(op)
		b, err := AppendOpen(nil, op)
		if err != nil {
			t.Fatalf("#%d: AppendOpen: %v", i, err)
		}
		h, err := ParseHeader(b, nil)
		if err != nil || h.Type != TypeOpen || int(h.Length) != len(b) || len(b) > MaxLen {
			t.Fatalf("#%d: ParseHeader = %+v, %v; message is %d bytes", i, h, err, len(b))
		}
		got, err := DecodeOpen(b[HeaderLen:])
		if err != nil {
			t.Fatalf("#%d: DecodeOpen: %v\nmessage %x", i, err, b)
		}
		if gv := viewOfOpen(got); !reflect.DeepEqual(want, gv) {
			t.Fatalf("#%d: round trip differs:%s", i, diffFields(want, gv))
		}
		if as != 0 && (got.AS() != as || (as > 0xffff) != (got.MyAS == ASTrans && as != ASTrans)) {
			t.Fatalf("#%d: NewOpen(%d) decoded as MyAS %d, AS() %d", i, as, got.MyAS, got.AS())
		}
		if b2, err := AppendOpen(nil, got); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("#%d: re-encoding differs (%v):\n%x\n%x", i, err, b, b2)
		}
		// The RFC 9072 format is used when asked for, and otherwise only
		// when classic optional parameters cannot hold the capabilities.
		wireExt := b[28] == 255 && b[29] == 255
		if got.Extended != wireExt {
			t.Fatalf("#%d: decoded Extended=%v, wire says %v", i, got.Extended, wireExt)
		}
		switch {
		case op.Extended:
			asked++
			if !got.Extended {
				t.Fatalf("#%d: Extended asked for, classic format used", i)
			}
		case got.Extended:
			forced++
			// One capabilities parameter (type, 2-byte length) holds them all.
			capsLen := int(binary.BigEndian.Uint16(b[33:]))
			if capsLen+2 <= 255 && maxCapLen(b[35:]) <= 253 {
				t.Fatalf("#%d: RFC 9072 format used for %d bytes of capabilities that fit a classic parameter", i, capsLen)
			}
		}
		m, err := DecodeMessage(b, nil)
		if err != nil {
			t.Fatalf("#%d: DecodeMessage: %v", i, err)
		}
		if mo, ok := m.(*Open); !ok || !reflect.DeepEqual(want, viewOfOpen(mo)) {
			t.Fatalf("#%d: DecodeMessage gave %T %+v", i, m, m)
		}
	}
	if asked == 0 || forced == 0 {
		t.Fatalf("generator never exercised the RFC 9072 format (asked %d, forced %d)", asked, forced)
	}
	t.Logf("%d OPENs; RFC 9072 format asked for %d, forced %d", iterations, asked, forced)
}

// maxCapLen is the longest capability value in a capability list.
func maxCapLen(caps []byte) int {
	m := 0
	for len(caps) >= 2 {
		m = max(m, int(caps[1]))
		caps = caps[min(len(caps), 2+int(caps[1])):]
	}
	return m
}

func TestRoundTripNotification(t *testing.T) {
	t.Parallel()
	r := newRand(3)
	const iterations = 3000
	for i := range iterations {
		n := genNotification(r)
		o := genOptions(r)
		b := AppendNotification(nil, n, &o)
		if len(b) != minNotificationLen+len(n.Data) {
			t.Fatalf("#%d: %d bytes for %d bytes of data", i, len(b), len(n.Data))
		}
		h, err := ParseHeader(b, &o)
		if err != nil || h.Type != TypeNotification || int(h.Length) != len(b) {
			t.Fatalf("#%d: ParseHeader = %+v, %v", i, h, err)
		}
		got, err := DecodeNotification(b[HeaderLen:])
		if err != nil {
			t.Fatalf("#%d: DecodeNotification: %v", i, err)
		}
		if got.Code != n.Code || got.Subcode != n.Subcode || !bytes.Equal(got.Data, n.Data) {
			t.Fatalf("#%d: got %d/%d %x, want %d/%d %x", i, got.Code, got.Subcode, got.Data, n.Code, n.Subcode, n.Data)
		}
		if msg, ok := n.ShutdownMessage(); ok {
			if gm, gok := got.ShutdownMessage(); !gok || gm != msg {
				t.Fatalf("#%d: shutdown message %q, want %q", i, gm, msg)
			}
		}
		m, err := DecodeMessage(b, &o)
		if gn, ok := m.(*Notification); err != nil || !ok || gn.Code != n.Code || gn.Subcode != n.Subcode || !bytes.Equal(gn.Data, n.Data) {
			t.Fatalf("#%d: DecodeMessage = %+v, %v", i, m, err)
		}
	}
	t.Logf("%d NOTIFICATIONs", iterations)
}

// TestRoundTripNotificationCut checks that AppendNotification cuts data
// that would exceed the size limit to exactly the limit, keeping its start.
func TestRoundTripNotificationCut(t *testing.T) {
	t.Parallel()
	r := newRand(9)
	for i := range 200 {
		o := genOptions(r)
		limit := o.maxLenFor(TypeNotification)
		n := &Notification{Code: ErrCodeUpdate, Subcode: ErrSubMalformedAttrList, Data: genBytes(r, limit-minNotificationLen+1+r.IntN(3000))}
		b := AppendNotification(nil, n, &o)
		got, err := DecodeMessage(b, &o)
		gn, ok := got.(*Notification)
		if err != nil || !ok || len(b) != limit || !bytes.Equal(gn.Data, n.Data[:limit-minNotificationLen]) {
			t.Fatalf("#%d: %d bytes of data in a %d-byte limit: message of %d bytes, %v", i, len(n.Data), limit, len(b), err)
		}
	}
}

// TestRoundTripShutdown checks RFC 9003 shutdown communications: NewShutdown
// keeps a message of up to 255 bytes whole, cuts a longer one at the last
// UTF-8 boundary within 255 bytes, and the message decodes back.
func TestRoundTripShutdown(t *testing.T) {
	t.Parallel()
	r := newRand(10)
	runes := []rune("aZ 09-é€😀\u00a0")
	for i := range 2000 {
		var sb strings.Builder
		for range r.IntN(300) {
			sb.WriteRune(runes[r.IntN(len(runes))])
		}
		s := sb.String()
		n := NewShutdown(CeaseAdminShutdown, s)
		b := AppendNotification(nil, n, nil)
		m, err := DecodeMessage(b, nil)
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		msg, ok := m.(*Notification).ShutdownMessage()
		switch {
		case !ok:
			t.Fatalf("#%d: no shutdown message decoded from %x", i, b)
		case len(s) <= MaxShutdownMessage && msg != s:
			t.Fatalf("#%d: %q became %q", i, s, msg)
		case !strings.HasPrefix(s, msg) || len(msg) > MaxShutdownMessage || !utf8.ValidString(msg):
			t.Fatalf("#%d: %q cut to %q", i, s, msg)
		case len(s) > MaxShutdownMessage && len(msg) < MaxShutdownMessage-3:
			t.Fatalf("#%d: %q cut too short, to %d bytes", i, s, len(msg))
		}
	}
}

func TestRoundTripRouteRefresh(t *testing.T) {
	t.Parallel()
	r := newRand(4)
	const iterations = 3000
	for i := range iterations {
		rr := genRouteRefresh(r)
		b := AppendRouteRefresh(nil, rr)
		if len(b) != routeRefreshLen {
			t.Fatalf("#%d: %d bytes", i, len(b))
		}
		got, err := DecodeRouteRefresh(b[HeaderLen:])
		if err != nil || *got != *rr {
			t.Fatalf("#%d: DecodeRouteRefresh = %+v, %v; want %+v", i, got, err, rr)
		}
		m, err := DecodeMessage(b, nil)
		if gr, ok := m.(*RouteRefresh); err != nil || !ok || *gr != *rr {
			t.Fatalf("#%d: DecodeMessage = %+v, %v", i, m, err)
		}
	}
	t.Logf("%d ROUTE-REFRESHes", iterations)
}

func TestRoundTripKeepalive(t *testing.T) {
	t.Parallel()
	b := AppendKeepalive([]byte{1, 2, 3})
	if !bytes.Equal(b[:3], []byte{1, 2, 3}) || len(b) != 3+HeaderLen {
		t.Fatalf("AppendKeepalive appended %x", b)
	}
	for _, o := range []*Options{nil, {ExtendedMessage: true}} {
		m, err := DecodeMessage(b[3:], o)
		if err != nil || m != (Keepalive{}) || MessageType(m) != TypeKeepalive {
			t.Fatalf("DecodeMessage = %#v, %v", m, err)
		}
	}
}

// TestRoundTripMessages appends a random stream of messages of every type to
// one buffer and decodes it back with DecodeMessage.
func TestRoundTripMessages(t *testing.T) {
	t.Parallel()
	r := newRand(5)
	const iterations = 200
	for i := range iterations {
		o := genOptions(r)
		var b []byte
		var want []any
		for range 1 + r.IntN(10) {
			var err error
			switch r.IntN(5) {
			case 0:
				u := genUpdate(r, o)
				b, err = AppendUpdate(b, u, &o)
				want = append(want, viewOf(u))
			case 1:
				op := genOpen(r)
				b, err = AppendOpen(b, op)
				want = append(want, viewOfOpen(op))
			case 2:
				n := genNotification(r)
				b = AppendNotification(b, n, &o)
				want = append(want, *n)
			case 3:
				rr := genRouteRefresh(r)
				b = AppendRouteRefresh(b, rr)
				want = append(want, *rr)
			case 4:
				b = AppendKeepalive(b)
				want = append(want, Keepalive{})
			}
			if err != nil {
				t.Fatalf("#%d: %v", i, err)
			}
		}
		msgs := splitMessages(t, b, &o)
		if len(msgs) != len(want) {
			t.Fatalf("#%d: %d messages, want %d", i, len(msgs), len(want))
		}
		for j, msg := range msgs {
			m, err := DecodeMessage(msg, &o)
			if err != nil {
				t.Fatalf("#%d.%d: %v", i, j, err)
			}
			var got any
			switch m := m.(type) {
			case *Update:
				got = viewOf(m)
			case *Open:
				got = viewOfOpen(m)
			case *Notification:
				got = *m
				if w := want[j].(Notification); len(w.Data) == 0 && len(m.Data) == 0 {
					got = w
				}
			case *RouteRefresh:
				got = *m
			case Keepalive:
				got = m
			}
			if !reflect.DeepEqual(got, want[j]) {
				t.Fatalf("#%d.%d: got %+v\nwant %+v", i, j, got, want[j])
			}
		}
	}
}

// genEncoderAttrs returns genAttrs with ORIGIN and AS_PATH (an UPDATE that
// announces routes needs them), small enough to leave room for prefixes.
func genEncoderAttrs(r *rand.Rand, o Options) Attrs {
	for {
		a := genAttrs(r, o)
		if !a.Has(AttrOrigin) {
			a.Origin = Origin(r.IntN(3))
			a.Set(AttrOrigin)
		}
		if !a.Has(AttrASPath) {
			a.Set(AttrASPath)
		}
		b, err := a.appendTo(nil, &o)
		if err == nil && len(b) < 2000 {
			return a
		}
	}
}

// TestRoundTripEncoder checks Encoder.AppendReach, AppendWithdraw and
// AppendEndOfRIB: the emitted messages decode to exactly the input prefixes,
// in order, with the given attributes and next hop; each is within the size
// limit; and packing is tight: no message but the last could have held the
// next prefix.
func TestRoundTripEncoder(t *testing.T) {
	t.Parallel()
	r := newRand(6)
	var e Encoder // reused on purpose, with changing options
	var d Update
	const iterations = 400
	total, totalMsgs := 0, 0
	for i := range iterations {
		o := genOptions(r)
		f := []Family{IPv4Unicast, IPv6Unicast}[r.IntN(2)]
		var nh, ll netip.Addr
		switch {
		case f == IPv6Unicast:
			nh = genAddr6(r)
			if chance(r, 1, 2) {
				ll = genLinkLocal(r)
			}
		case chance(r, 1, 3): // RFC 8950: IPv4 routes, IPv6 next hop
			o.ExtendedNextHop |= FamilySetOf(IPv4Unicast)
			nh, ll = genMPNextHop(r, f, o)
			for nh.Is4() {
				nh, ll = genMPNextHop(r, f, o)
			}
		default:
			nh = genAddr4(r)
			if chance(r, 1, 4) {
				ll = genLinkLocal(r) // ignored with an IPv4 next hop
			}
		}
		a := genEncoderAttrs(r, o)
		var n int
		switch r.IntN(4) {
		case 0:
			n = r.IntN(10)
		case 1:
			n = r.IntN(300)
		case 2:
			n = r.IntN(1500)
		default:
			n = r.IntN(5001)
		}
		addPath := o.AddPath.Has(f)
		nlri := genNLRI(r, f, n, addPath)
		classic := f == IPv4Unicast && nh.Is4()
		limit := o.maxLenFor(TypeUpdate)
		e.Options = o

		// Expected attributes of every reach message.
		exp := Update{Attrs: *a.Clone()}
		exp.Attrs.Clear(AttrNextHop)
		exp.Attrs.NextHop = netip.Addr{}
		if classic {
			exp.Attrs.NextHop = nh
			exp.Attrs.Set(AttrNextHop)
		} else {
			exp.Attrs.MPReach = MPReach{Family: f, NextHop: nh}
			if !nh.Is4() {
				exp.Attrs.MPReach.LinkLocal = ll
			}
			exp.Attrs.Set(AttrMPReach)
		}
		wantReach := viewOf(&exp)

		check := func(what string, b []byte, msgs int, withdraw bool, want updateView) {
			t.Helper()
			parts := splitMessages(t, b, &o)
			if len(parts) != msgs {
				t.Fatalf("#%d %s: %d messages returned, %d found", i, what, msgs, len(parts))
			}
			var got []NLRI
			for j, m := range parts {
				if len(m) > limit {
					t.Fatalf("#%d %s: message %d of %d bytes over the %d limit", i, what, j, len(m), limit)
				}
				if err := DecodeUpdate(&d, m[HeaderLen:], &o); err != nil {
					t.Fatalf("#%d %s: message %d: %v", i, what, j, err)
				}
				v := viewOf(&d)
				var these []NLRI
				switch {
				case withdraw && f == IPv4Unicast:
					these, v.Withdrawn = v.Withdrawn, nil
				case withdraw:
					these, v.MPUnreach.Withdrawn = v.MPUnreach.Withdrawn, nil
				case classic:
					these, v.NLRI = v.NLRI, nil
				default:
					these, v.MPReach.NLRI = v.MPReach.NLRI, nil
				}
				if len(these) == 0 && len(nlri) > 0 {
					t.Fatalf("#%d %s: message %d carries no prefix", i, what, j)
				}
				if !reflect.DeepEqual(want, v) {
					t.Fatalf("#%d %s (options %+v): message %d:%s", i, what, o, j, diffFields(want, v))
				}
				got = append(got, these...)
				if j < len(parts)-1 && len(m)+nlriLen(nlri[len(got)], addPath) <= limit {
					t.Fatalf("#%d %s: message %d of %d bytes could have held the next %d-byte prefix (limit %d)",
						i, what, j, len(m), nlriLen(nlri[len(got)], addPath), limit)
				}
			}
			if !reflect.DeepEqual(nilIfEmpty(nlri), nilIfEmpty(got)) {
				t.Fatalf("#%d %s: %d prefixes decoded, %d sent (or out of order)", i, what, len(got), len(nlri))
			}
			totalMsgs += len(parts)
		}

		b, msgs, err := e.AppendReach([]byte{}, f, nh, ll, &a, nlri)
		if err != nil {
			t.Fatalf("#%d: AppendReach: %v", i, err)
		}
		check("reach", b, msgs, false, wantReach)

		var wu Update
		if f != IPv4Unicast {
			wu.Attrs.MPUnreach.Family = f
			wu.Attrs.Set(AttrMPUnreach)
		}
		b, msgs, err = e.AppendWithdraw(b[:0], f, nlri)
		if err != nil {
			t.Fatalf("#%d: AppendWithdraw: %v", i, err)
		}
		check("withdraw", b, msgs, true, viewOf(&wu))

		b = e.AppendEndOfRIB(b[:0], f)
		if err := DecodeUpdate(&d, b[HeaderLen:], &o); err != nil || int(binary.BigEndian.Uint16(b[16:])) != len(b) {
			t.Fatalf("#%d: End-of-RIB %x: %v", i, b, err)
		}
		if ef, ok := d.EndOfRIB(); !ok || ef != f {
			t.Fatalf("#%d: End-of-RIB %x decodes as %v, %v; want %v", i, b, ef, ok, f)
		}
		if f == IPv4Unicast && len(b) != minUpdateLen {
			t.Fatalf("#%d: IPv4 End-of-RIB of %d bytes", i, len(b))
		}
		total += len(nlri)
	}
	t.Logf("%d encoder runs, %d prefixes, %d reach+withdraw messages", iterations, total, totalMsgs)
}

// TestRoundTripAS4Trans checks the RFC 6793 transition on 2-octet sessions:
// 4-octet ASes in AS_PATH and AGGREGATOR go out as AS_TRANS, with AS4_PATH
// and AS4_AGGREGATOR carrying the real values, and decoding restores them.
func TestRoundTripAS4Trans(t *testing.T) {
	t.Parallel()
	r := newRand(7)
	const iterations = 2000
	var d Update
	merged := 0
	for i := range iterations {
		o := genOptions(r)
		o.AS4 = false
		var a Attrs
		for {
			a = genAttrs(r, o)
			a.ASPath = genASPath(r, o)
			a.Set(AttrASPath)
			if len(a.ASPath) > 0 && chance(r, 4, 5) {
				// Make sure some counted AS needs four octets.
				for j := range a.ASPath {
					if s := &a.ASPath[j]; s.Type == ASSequence || s.Type == ASSet {
						s.ASNs[r.IntN(len(s.ASNs))] = 0x10000 + r.Uint32N(1<<20)
						break
					}
				}
				a.ASPath = genFixConfed(a.ASPath)
			}
			if chance(r, 1, 2) {
				a.Aggregator = Aggregator{AS: 0x10000 + r.Uint32N(1<<30), Addr: genAddr4(r)}
				a.Set(AttrAggregator)
			}
			if b, err := a.appendTo(nil, &o); err == nil && len(b) < 3000 {
				break
			}
		}
		u := &Update{Attrs: a}
		b, err := AppendUpdate(nil, u, &o)
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		attrs, ok := wireAttrs(b)
		if !ok {
			t.Fatalf("#%d: cannot split attributes of %x", i, b)
		}

		// AS_PATH: 2-octet ASes, AS_TRANS for those that need four.
		ap, ok := findWireAttr(attrs, AttrASPath)
		if !ok {
			t.Fatalf("#%d: no AS_PATH on the wire", i)
		}
		var wantAP []byte
		for _, s := range a.ASPath {
			wantAP = append(wantAP, s.Type, byte(len(s.ASNs)))
			for _, as := range s.ASNs {
				if as > 0xffff {
					as = ASTrans
				}
				wantAP = binary.BigEndian.AppendUint16(wantAP, uint16(as))
			}
		}
		if !bytes.Equal(ap.Value, wantAP) {
			t.Fatalf("#%d: AS_PATH on the wire %x, want %x (path %v)", i, ap.Value, wantAP, a.ASPath)
		}
		as4, hasAS4 := findWireAttr(attrs, AttrAS4Path)
		if hasAS4 != needsAS4Path(a.ASPath) {
			t.Fatalf("#%d: AS4_PATH present=%v for path %v", i, hasAS4, a.ASPath)
		}
		if hasAS4 {
			merged++
			if !bytes.Contains(ap.Value, []byte{ASTrans >> 8, ASTrans & 0xff}) {
				t.Fatalf("#%d: AS4_PATH sent but no AS_TRANS in AS_PATH %x", i, ap.Value)
			}
			if as4.Flags&^FlagExtLen != FlagOptional|FlagTransitive {
				t.Fatalf("#%d: AS4_PATH flags %#x", i, as4.Flags)
			}
			var want4 []byte
			for _, s := range a.ASPath {
				if s.Type == ASSequence || s.Type == ASSet {
					want4 = append(want4, s.Type, byte(len(s.ASNs)))
					for _, as := range s.ASNs {
						want4 = binary.BigEndian.AppendUint32(want4, as)
					}
				}
			}
			if !bytes.Equal(as4.Value, want4) {
				t.Fatalf("#%d: AS4_PATH %x, want %x", i, as4.Value, want4)
			}
		}
		if a.Has(AttrAggregator) {
			ag, _ := findWireAttr(attrs, AttrAggregator)
			wantAS := a.Aggregator.AS
			if wantAS > 0xffff {
				wantAS = ASTrans
			}
			if len(ag.Value) != 6 || uint32(binary.BigEndian.Uint16(ag.Value)) != wantAS {
				t.Fatalf("#%d: AGGREGATOR %x, want AS %d", i, ag.Value, wantAS)
			}
			ag4, ok := findWireAttr(attrs, AttrAS4Aggregator)
			if ok != (a.Aggregator.AS > 0xffff) {
				t.Fatalf("#%d: AS4_AGGREGATOR present=%v for AS %d", i, ok, a.Aggregator.AS)
			}
			if ok && (len(ag4.Value) != 8 || binary.BigEndian.Uint32(ag4.Value) != a.Aggregator.AS) {
				t.Fatalf("#%d: AS4_AGGREGATOR %x, want AS %d", i, ag4.Value, a.Aggregator.AS)
			}
		}

		if err := DecodeUpdate(&d, b[HeaderLen:], &o); err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		if want, got := viewOf(u), viewOf(&d); !reflect.DeepEqual(want, got) {
			t.Fatalf("#%d: round trip differs:%s", i, diffFields(want, got))
		}
	}
	if merged < iterations/2 {
		t.Fatalf("only %d of %d paths needed AS4_PATH", merged, iterations)
	}
	t.Logf("%d 2-octet UPDATEs, %d with AS4_PATH", iterations, merged)
}

// genFixConfed moves confederation segments to the front and keeps their
// ASes within two octets (see genASPath's restriction).
func genFixConfed(p ASPath) ASPath {
	var q ASPath
	for _, s := range p {
		if s.Type == ASConfedSequence || s.Type == ASConfedSet {
			for j := range s.ASNs {
				s.ASNs[j] = s.ASNs[j]&0xffff | 1
			}
			q = append(q, s)
		}
	}
	for _, s := range p {
		if s.Type == ASSequence || s.Type == ASSet {
			q = append(q, s)
		}
	}
	return q
}

// TestRoundTripViewCoversFields guards updateView and viewOfOpen: a field
// added to the decoded types must be added to the views (and to this list),
// or round-trip equality would silently ignore it.
func TestRoundTripViewCoversFields(t *testing.T) {
	t.Parallel()
	covered := map[reflect.Type][]string{
		reflect.TypeFor[Update](): {"Withdrawn", "Attrs", "NLRI", "Discarded"}, // Discarded: decode report, not content
		reflect.TypeFor[Attrs](): {"Origin", "ASPath", "NextHop", "MED", "LocalPref", "Aggregator", "Communities",
			"OriginatorID", "ClusterList", "MPReach", "MPUnreach", "ExtCommunities", "LargeCommunities", "OTC", "Unknown"},
		reflect.TypeFor[MPReach]():         {"Family", "NextHop", "LinkLocal", "OtherNextHop", "NLRI"},
		reflect.TypeFor[MPUnreach]():       {"Family", "Withdrawn"},
		reflect.TypeFor[RawAttr]():         {"Flags", "Type", "Value"},
		reflect.TypeFor[Open]():            {"Version", "MyAS", "HoldTime", "ID", "Caps", "Extended"}, // Extended: checked apart
		reflect.TypeFor[Capabilities]():    {"Multiprotocol", "RouteRefresh", "EnhancedRouteRefresh", "ExtendedMessage", "HasAS4", "AS4", "GracefulRestart", "LongLivedGR", "AddPath", "ExtendedNextHop", "HasRole", "Role", "FQDN", "Unknown"},
		reflect.TypeFor[GracefulRestart](): {"Restarting", "Notification", "Time", "Families"},
		reflect.TypeFor[FQDN]():            {"Hostname", "Domain"},
		reflect.TypeFor[RawCapability]():   {"Code", "Value"},
	}
	for typ, want := range covered {
		var got []string
		for i := range typ.NumField() {
			if f := typ.Field(i); f.IsExported() {
				got = append(got, f.Name)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v has exported fields %v; the views (gen_test.go) cover %v", typ, got, want)
		}
	}
}

// ---- Reproducers of codec bugs: they fail until the bug is fixed. ----

// mutateUpdateWire rewrites the path attributes of a whole UPDATE message in
// ways that keep its meaning: the attributes are shuffled (so AS4_PATH may
// precede AS_PATH, MP_REACH_NLRI come last, ...), any of them may use the
// extended (2-byte) length even when short, and optional transitive ones may
// carry the Partial bit (as after crossing a speaker that did not know them).
// It returns nil when the result would exceed limit.
func mutateUpdateWire(r *rand.Rand, msg []byte, limit int) []byte {
	attrs, ok := wireAttrs(msg)
	if !ok {
		panic("mutateUpdateWire: unsplittable UPDATE")
	}
	r.Shuffle(len(attrs), func(i, j int) { attrs[i], attrs[j] = attrs[j], attrs[i] })
	body := msg[HeaderLen:]
	wl := int(binary.BigEndian.Uint16(body))
	al := int(binary.BigEndian.Uint16(body[2+wl:]))
	out, start := appendHeader(nil, TypeUpdate)
	out = append(out, body[:2+wl]...)
	alPos := len(out)
	out = append(out, 0, 0)
	for _, a := range attrs {
		flags := a.Flags &^ FlagExtLen
		if flags&(FlagOptional|FlagTransitive) == FlagOptional|FlagTransitive && chance(r, 1, 3) {
			flags |= FlagPartial
		}
		if len(a.Value) > 255 || chance(r, 1, 3) {
			out = append(out, flags|FlagExtLen, a.Type)
			out = binary.BigEndian.AppendUint16(out, uint16(len(a.Value)))
		} else {
			out = append(out, flags, a.Type, byte(len(a.Value)))
		}
		out = append(out, a.Value...)
	}
	binary.BigEndian.PutUint16(out[alPos:], uint16(len(out)-alPos-2))
	out = append(out, body[4+wl+al:]...)
	if len(out)-start > limit {
		return nil
	}
	binary.BigEndian.PutUint16(out[start+16:], uint16(len(out)-start))
	return out
}

// TestRoundTripUpdateMutated decodes generated UPDATEs whose attributes were
// reordered and re-framed by mutateUpdateWire: the meaning must not change.
func TestRoundTripUpdateMutated(t *testing.T) {
	t.Parallel()
	r := newRand(8)
	var d Update
	const iterations = 2000
	mutated := 0
	for i := range iterations {
		o := genOptions(r)
		u := genUpdate(r, o)
		b, err := AppendUpdate(nil, u, &o)
		if err != nil {
			t.Fatal(err)
		}
		m := mutateUpdateWire(r, b, o.maxLenFor(TypeUpdate))
		if m == nil {
			continue
		}
		mutated++
		if err := DecodeUpdate(&d, m[HeaderLen:], &o); err != nil {
			t.Fatalf("#%d (options %+v): %v\noriginal %x\nmutated  %x", i, o, err, b, m)
		}
		want := viewOf(u)
		got := viewOf(&d)
		// Unknown attributes are kept in wire order, which the shuffle
		// changed, with the flags as received (Partial was already set).
		byType := func(x, y RawAttr) int { return int(x.Type) - int(y.Type) }
		slices.SortFunc(want.Unknown, byType)
		slices.SortFunc(got.Unknown, byType)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("#%d (options %+v): mutated UPDATE differs:%s\noriginal %x\nmutated  %x", i, o, diffFields(want, got), b, m)
		}
	}
	t.Logf("%d mutated UPDATEs", mutated)
}
