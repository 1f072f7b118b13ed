package fib

import (
	"fmt"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

var testKey = routeKey{table: 1000, metric: 20, proto: ProtoBGP}

// oneMsg splits exactly one message off b.
func oneMsg(t *testing.T, b []byte) nlMsg {
	t.Helper()
	m, rest, err := nextMsg(b)
	if err != nil || len(rest) != 0 {
		t.Fatalf("nextMsg: %v, %d bytes left", err, len(rest))
	}
	return m
}

func TestRouteMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		nhID   uint32
		hops   []NextHop
	}{
		{"gateway", "203.0.113.1/32", 0, hops("198.51.100.2")},
		{"ipv4 via ipv6 (RFC 8950)", "203.0.113.1/32", 0, hops("2001:db8::2")},
		{"ipv6", "2001:db8:100::/48", 0, hops("2001:db8::2")},
		{"multipath", "203.0.113.0/24", 0, hops("198.51.100.2", "198.51.100.3", "2001:db8::4")},
		{"weighted multipath", "2001:db8:100::1/128", 0, hops("2001:db8::2*1", "2001:db8::3*256")},
		{"nexthop object", "203.0.113.1/32", 0xba000001, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m msgBuf
			p := mustPrefix(tt.prefix)
			m.addRoute(77, 0, testKey, p, tt.nhID, tt.hops, nil)
			msg := oneMsg(t, m.b)
			if msg.typ != unix.RTM_NEWROUTE || msg.seq != 77 ||
				msg.flags != unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE {
				t.Fatalf("header %+v", msg)
			}
			r, _, err := parseRoute(msg.data, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := kernelRoute{prefix: p, table: 1000, proto: ProtoBGP, typ: unix.RTN_UNICAST,
				metric: 20, nhID: tt.nhID, gwSet: len(tt.hops) == 1}
			got := r
			got.hops = nil
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("parsed %+v, want %+v", got, want)
			}
			wantHops := tt.hops
			if len(wantHops) > 1 {
				wantHops = nil
				for _, h := range tt.hops {
					h.Weight = kernelWeight(h)
					wantHops = append(wantHops, h)
				}
			}
			if !slices.Equal(r.hops, wantHops) {
				t.Errorf("hops %v, want %v", r.hops, wantHops)
			}
		})
	}
}

func TestDeleteMessage(t *testing.T) {
	var m msgBuf
	m.delRoute(9, unix.NLM_F_ACK, testKey, mustPrefix("2001:db8:100::1/128"))
	msg := oneMsg(t, m.b)
	if msg.typ != unix.RTM_DELROUTE || msg.flags != unix.NLM_F_REQUEST|unix.NLM_F_ACK {
		t.Fatalf("header %+v", msg)
	}
	r, _, err := parseRoute(msg.data, nil, nil)
	if err != nil || r.prefix != mustPrefix("2001:db8:100::1/128") || r.metric != 20 || r.proto != ProtoBGP || len(r.hops) != 0 {
		t.Errorf("parsed %+v, %v", r, err)
	}
}

func TestNexthopMessageRoundTrip(t *testing.T) {
	var m msgBuf
	m.addNexthop(1, 0, ProtoBGP, 0xba000001, mustAddr("2001:db8::2"), 7)
	m.addGroup(2, 0, ProtoBGP, 0xba000003, []nhMember{{0xba000001, 1}, {0xba000002, 256}}, groupForm{})
	res := groupForm{resilient: true, buckets: 256, idle: 12000, unbalanced: 30000}
	m.addGroup(3, 0, ProtoBGP, 0xba000004, []nhMember{{0xba000001, 1}, {0xba000002, 2}}, res)
	m.delNexthop(4, 0, 0xba000003)
	want := []kernelNexthop{
		{id: 0xba000001, proto: ProtoBGP, gw: mustAddr("2001:db8::2"), oif: 7},
		{id: 0xba000003, proto: ProtoBGP, group: []nhMember{{0xba000001, 1}, {0xba000002, 256}}},
		{id: 0xba000004, proto: ProtoBGP, group: []nhMember{{0xba000001, 1}, {0xba000002, 2}}, form: res},
		{id: 0xba000003},
	}
	types := []uint16{unix.RTM_NEWNEXTHOP, unix.RTM_NEWNEXTHOP, unix.RTM_NEWNEXTHOP, unix.RTM_DELNEXTHOP}
	b := m.b
	for i := range want {
		msg, rest, err := nextMsg(b)
		if err != nil {
			t.Fatal(err)
		}
		b = rest
		if msg.typ != types[i] || msg.seq != uint32(i+1) {
			t.Errorf("message %d: header %+v", i, msg)
		}
		n, err := parseNexthop(msg.data)
		if err != nil {
			t.Fatal(err)
		}
		if n.id != want[i].id || n.proto != want[i].proto || n.gw != want[i].gw || n.oif != want[i].oif ||
			!slices.Equal(n.group, want[i].group) {
			t.Errorf("message %d: parsed %+v, want %+v", i, n, want[i])
		}
	}
	if len(b) != 0 {
		t.Errorf("%d bytes left", len(b))
	}
}

// errMsg builds an NLMSG_ERROR as the kernel sends it with CAP_ACK and
// EXT_ACK, with an optional extended ack text.
func errMsg(seq uint32, errno unix.Errno, text string) []byte {
	var m msgBuf
	flags := uint16(unix.NLM_F_CAPPED)
	if text != "" {
		flags |= unix.NLM_F_ACK_TLVS
	}
	off := m.begin(unix.NLMSG_ERROR, flags, seq)
	e := m.grow(unix.SizeofNlMsgerr)
	ne.PutUint32(m.b[e:], uint32(-int32(errno)))
	ne.PutUint32(m.b[e+4:], 16)
	ne.PutUint32(m.b[e+12:], seq)
	if text != "" {
		v := m.attr(unix.NLMSGERR_ATTR_MSG, len(text)+1)
		copy(m.b[v:], text)
	}
	m.end(off)
	return m.b
}

func TestParseError(t *testing.T) {
	for _, tt := range []struct {
		errno unix.Errno
		text  string
	}{
		{0, ""},
		{unix.ENETUNREACH, "Nexthop has invalid gateway"},
		{unix.ESRCH, ""},
	} {
		errno, text, err := parseError(oneMsg(t, errMsg(5, tt.errno, tt.text)))
		if err != nil || errno != tt.errno || text != tt.text {
			t.Errorf("parseError = %v %q %v, want %v %q", errno, text, err, tt.errno, tt.text)
		}
	}
}

func TestEachReplyFiltersSequence(t *testing.T) {
	d := append(errMsg(9, unix.EEXIST, ""), errMsg(10, unix.ENETUNREACH, "x")...)
	d = append(d, errMsg(13, 0, "")...)
	d = append(d, errMsg(14, unix.EINVAL, "")...)
	var got []reply
	if err := eachReply(d, 10, 13, func(r reply) { got = append(got, r) }); err != nil {
		t.Fatal(err)
	}
	want := []reply{{seq: 10, errno: unix.ENETUNREACH, msg: "x"}, {seq: 13}}
	if !slices.Equal(got, want) {
		t.Errorf("replies %+v, want %+v", got, want)
	}
	// Sequence numbers wrap around.
	got = nil
	d = append(errMsg(0xffffffff, unix.EINVAL, ""), errMsg(1, 0, "")...)
	if err := eachReply(d, 0xfffffffe, 1, func(r reply) { got = append(got, r) }); err != nil || len(got) != 2 {
		t.Errorf("across the wrap: %+v %v", got, err)
	}
}

func TestEncodeNoAllocs(t *testing.T) {
	var m msgBuf
	p := mustPrefix("203.0.113.1/32")
	ecmp := hops("198.51.100.2*1", "198.51.100.3*2")
	gw := hops("198.51.100.2")
	m.b = make([]byte, 0, 1<<16)
	n := testing.AllocsPerRun(100, func() {
		m.reset()
		for i := range 100 {
			m.addRoute(uint32(i), 0, testKey, p, 0, ecmp, nil)
			m.addRoute(uint32(i), 0, testKey, p, 0, gw, nil)
			m.addRoute(uint32(i), 0, testKey, p, 42, nil, nil)
			m.delRoute(uint32(i), 0, testKey, p)
		}
	})
	if n != 0 {
		t.Errorf("encoding routes allocates %v times per 400 messages", n)
	}
}

func TestParseRouteArenaNoAllocs(t *testing.T) {
	var m msgBuf
	m.addRoute(1, 0, testKey, mustPrefix("203.0.113.0/24"), 0, hops("198.51.100.2", "198.51.100.3"), nil)
	data := oneMsg(t, m.b).data
	arena := make([]NextHop, 0, 1024)
	n := testing.AllocsPerRun(100, func() {
		arena = arena[:0]
		for range 100 {
			_, arena, _ = parseRoute(data, arena, nil)
		}
	})
	if n != 0 {
		t.Errorf("parsing routes into an arena allocates %v times", n)
	}
}

func TestParseMalformed(t *testing.T) {
	var m msgBuf
	m.addRoute(1, 0, testKey, mustPrefix("203.0.113.0/24"), 0, hops("198.51.100.2", "198.51.100.3"), nil)
	good := oneMsg(t, m.b).data
	// Every truncation either parses (attributes cut at a boundary) or
	// fails; none panics.
	for i := range good {
		_, _, _ = parseRoute(good[:i], nil, nil)
		_, _ = parseNexthop(good[:i])
	}
	bad := slices.Clone(good)
	ne.PutUint16(bad[sizeofRtMsg:], 2) // attribute shorter than its header
	if _, _, err := parseRoute(bad, nil, nil); err == nil {
		t.Errorf("attribute length 2 accepted")
	}
	bad = slices.Clone(good)
	bad[1] = 40 // /40 on an IPv4 prefix
	if _, _, err := parseRoute(bad, nil, nil); err == nil {
		t.Errorf("IPv4 /40 accepted")
	}
	if _, _, err := nextMsg([]byte{1, 2, 3}); err == nil {
		t.Errorf("3-byte message accepted")
	}
	if _, _, err := nextMsg(append([]byte{200, 0, 0, 0}, make([]byte, 12)...)); err == nil {
		t.Errorf("message longer than its buffer accepted")
	}
}

func FuzzParse(f *testing.F) {
	var m msgBuf
	m.addRoute(1, 0, testKey, mustPrefix("203.0.113.0/24"), 0, hops("198.51.100.2", "2001:db8::3*4"), nil)
	m.addRoute(2, 0, testKey, mustPrefix("2001:db8:100::1/128"), 7, nil, nil)
	m.addGroup(3, 0, ProtoBGP, 9, []nhMember{{1, 1}, {2, 3}}, groupForm{resilient: true, buckets: 8, idle: 100})
	m.addNexthop(4, 0, ProtoBGP, 1, mustAddr("198.51.100.2"), 2)
	f.Add(m.b)
	f.Add(errMsg(5, unix.ENETUNREACH, "Nexthop has invalid gateway"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			msg, rest, err := nextMsg(b)
			if err != nil {
				return
			}
			b = rest
			_, _, _ = parseError(msg)
			r, _, err := parseRoute(msg.data, nil, nil)
			if err == nil && !r.prefix.IsValid() {
				t.Fatalf("parseRoute returned an invalid prefix without error")
			}
			_, _ = parseNexthop(msg.data)
			_, _ = parseBucket(msg.data)
		}
	})
}
