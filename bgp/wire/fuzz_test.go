package wire

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fuzzOptions turns a fuzzer byte into session options, so the fuzzer
// explores every wire format the decoder switches on.
func fuzzOptions(f uint8) Options {
	o := Options{AS4: f&1 != 0, ExtendedMessage: f&2 != 0, External: f&16 != 0}
	if f&4 != 0 {
		o.AddPath |= FamilySetOf(IPv4Unicast)
	}
	if f&32 != 0 {
		o.AddPath |= FamilySetOf(IPv6Unicast)
	}
	if f&8 != 0 {
		o.ExtendedNextHop = FamilySetOf(IPv4Unicast)
	}
	return o
}

// appendMessage re-encodes any decoded message.
func appendMessage(b []byte, m Message, o *Options) ([]byte, error) {
	switch m := m.(type) {
	case *Open:
		return AppendOpen(b, m)
	case *Update:
		return AppendUpdate(b, m, o)
	case *Notification:
		return AppendNotification(b, m, o), nil
	case Keepalive:
		return AppendKeepalive(b), nil
	case *RouteRefresh:
		return AppendRouteRefresh(b, m), nil
	}
	return nil, fmt.Errorf("unknown message %T", m)
}

// checkReencode is the property both fuzz targets hold the codec to: a
// message that decodes (possibly minus discarded attributes) encodes to bytes
// that decode without error to the same value and encode to the same bytes.
func checkReencode(t *testing.T, data []byte, o *Options) {
	m, err := DecodeMessage(data, o)
	if err != nil && ActionOf(err) != AttributeDiscard {
		if _, ok := AsError(err); !ok {
			t.Fatalf("error is not an *Error: %v", err)
		}
		return
	}
	b1, err := appendMessage(nil, m, o)
	if errors.Is(err, ErrTooLong) {
		// Re-packing OPEN parameters can add a few bytes to a
		// message that was at the limit.
		return
	}
	if err != nil {
		t.Fatalf("re-encoding %T: %v", m, err)
	}
	m2, err := DecodeMessage(b1, o)
	if err != nil {
		t.Fatalf("decoding the re-encoded %T: %v\nin  %x\nout %x", m, err, data, b1)
	}
	b2, err := appendMessage(nil, m2, o)
	if err != nil {
		t.Fatalf("second re-encoding: %v", err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("encoding is not stable:\n%x\n%x", b1, b2)
	}
	if u, ok := m.(*Update); ok {
		u2 := m2.(*Update)
		if !reflect.DeepEqual(normUpdate(u), normUpdate(u2)) {
			n1, n2 := normUpdate(u), normUpdate(u2)
			t.Fatalf("decoded values differ:\n%+v %+v\n%+v %+v", n1, *n1.Attrs, n2, *n2.Attrs)
		}
	} else if !reflect.DeepEqual(m, m2) {
		t.Fatalf("decoded values differ:\n%+v\n%+v", m, m2)
	}
}

type normalized struct {
	Withdrawn, NLRI, MPReach, MPUnreach []NLRI
	Attrs                               *Attrs
}

// normUpdate lists the prefixes and normalises what legitimately changes on
// a re-encode: nil versus empty slices, and the Partial bit the encoder sets
// on attributes it passes on.
func normUpdate(u *Update) normalized {
	a := u.Attrs.Clone()
	for i := range a.Unknown {
		a.Unknown[i].Flags |= FlagPartial
	}
	n := normalized{
		Withdrawn: u.Withdrawn.AppendTo(nil), NLRI: u.NLRI.AppendTo(nil),
		MPReach: a.MPReach.NLRI.AppendTo(nil), MPUnreach: a.MPUnreach.Withdrawn.AppendTo(nil),
	}
	a.MPReach.NLRI, a.MPUnreach.Withdrawn = Prefixes{}, Prefixes{}
	if len(a.Unknown) == 0 {
		a.Unknown = nil
	}
	if len(a.MPReach.OtherNextHop) == 0 {
		a.MPReach.OtherNextHop = nil
	}
	n.Attrs = a
	return n
}

func FuzzDecodeMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, opts uint8) {
		o := fuzzOptions(opts)
		checkReencode(t, data, &o)
	})
}

// FuzzUpdate feeds UPDATE bodies, so the fuzzer need not rediscover the
// header; DecodeUpdate reuses one Update across inputs the way a session does.
func FuzzUpdate(f *testing.F) {
	var u Update
	f.Fuzz(func(t *testing.T, body []byte, opts uint8) {
		o := fuzzOptions(opts)
		err := DecodeUpdate(&u, body, &o)
		if err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("error is not an *Error: %v", err)
			}
		}
		if len(body)+HeaderLen <= o.maxLenFor(TypeUpdate) {
			checkReencode(t, msg(TypeUpdate, body), &o)
		}
	})
}

// TestFuzzCorpusPresent fails when the checked-in seed corpora are missing,
// so `go test` cannot pass by running the fuzz targets on nothing.
func TestFuzzCorpusPresent(t *testing.T) {
	for _, name := range []string{"FuzzDecodeMessage", "FuzzUpdate"} {
		files, err := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
		if err != nil || len(files) < 50 {
			t.Errorf("%s: %d seed files, want at least 50 (regenerate with BGPLB_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus)", name, len(files))
		}
	}
}

// TestWriteFuzzCorpus regenerates the seed corpora from the hand-built
// vectors and generated messages when BGPLB_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("BGPLB_WRITE_CORPUS") != "1" {
		t.Skip("set BGPLB_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	seeds := corpusSeeds(t)
	for _, name := range []string{"FuzzDecodeMessage", "FuzzUpdate"} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		n := 0
		for i, s := range seeds {
			data := s.msg
			if name == "FuzzUpdate" {
				if len(data) < HeaderLen || data[18] != TypeUpdate {
					continue
				}
				data = data[HeaderLen:]
			}
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint8(%d)\n", data, s.opts)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			n++
		}
		t.Logf("%s: %d seeds", name, n)
	}
}

type seed struct {
	msg  []byte
	opts uint8
}

// corpusSeeds is every hand-built message of the table tests, under the
// options they were written for, plus messages from the encoder.
func corpusSeeds(t *testing.T) []seed {
	var seeds []seed
	optByte := func(o Options) uint8 {
		for f := 0; f < 64; f++ {
			if reflect.DeepEqual(fuzzOptions(uint8(f)), o) {
				return uint8(f)
			}
		}
		t.Fatalf("options %+v have no fuzz byte", o)
		return 0
	}
	for _, v := range attributeVectors() {
		nlri := ""
		if bytes.Contains(hx(t, v.attrs), hx(t, hNextHop)) {
			nlri = hNLRI
		}
		seeds = append(seeds, seed{msg(TypeUpdate, updBody(t, "", v.attrs, nlri)), optByte(v.o)})
	}
	for _, c := range malformedUpdates() {
		seeds = append(seeds, seed{msg(TypeUpdate, updBody(t, c.withdrawn, c.attrs, c.nlri)), optByte(c.o)})
	}
	open, err := AppendOpen(nil, NewOpen(70000, 90, mustAddr("198.51.100.1"), Capabilities{
		Multiprotocol: []Family{IPv4Unicast, IPv6Unicast}, RouteRefresh: true, EnhancedRouteRefresh: true,
		ExtendedMessage: true, GracefulRestart: &GracefulRestart{Time: 120, Families: []GRFamily{{IPv4Unicast, true}}},
		LongLivedGR: []LLGRFamily{{IPv6Unicast, false, 3600}}, AddPath: []AddPathFamily{{IPv4Unicast, AddPathBoth}},
		ExtendedNextHop: []ExtendedNextHop{{IPv4Unicast, AFIIPv6}}, HasRole: true, Role: RolePeer,
		FQDN: &FQDN{"router", "lan"}, Unknown: []RawCapability{{128, nil}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, seed{open, 1})
	ext := NewOpen(64512, 0, mustAddr("198.51.100.2"), Capabilities{RouteRefresh: true})
	ext.Extended = true
	b, _ := AppendOpen(nil, ext)
	seeds = append(seeds, seed{b, 1})
	seeds = append(seeds,
		seed{AppendKeepalive(nil), 0},
		seed{AppendNotification(nil, NewShutdown(CeaseAdminShutdown, "node node1 shutting down"), nil), 0},
		seed{AppendNotification(nil, &Notification{Code: ErrCodeUpdate, Subcode: ErrSubMalformedASPath, Data: []byte{1, 2}}, nil), 0},
		seed{AppendRouteRefresh(nil, &RouteRefresh{IPv6Unicast, RefreshBoRR}), 0},
	)
	// Packed UPDATEs: IPv4 classic and IPv6 MP, with and without ADD-PATH.
	a := &Attrs{Origin: OriginIGP, ASPath: ASPath{{ASSequence, []uint32{64512, 70000}}}, LocalPref: 100,
		Communities: []Community{NewCommunity(64512, 7)}, ExtCommunities: []ExtCommunity{NewLinkBandwidth(64512, 3, false)}}
	for _, t := range []uint8{AttrOrigin, AttrASPath, AttrLocalPref, AttrCommunities, AttrExtCommunities} {
		a.Set(t)
	}
	for _, opts := range []uint8{0, 1, 37} {
		e := Encoder{Options: fuzzOptions(opts)}
		var nlri4, nlri6 []NLRI
		for i := range 40 {
			nlri4 = append(nlri4, NLRI{mustPrefix(fmt.Sprintf("203.0.113.%d/32", i)), uint32(i)})
			nlri6 = append(nlri6, NLRI{mustPrefix(fmt.Sprintf("2001:db8:%x::/48", i)), uint32(i)})
		}
		b, _, err := e.AppendReach(nil, IPv4Unicast, mustAddr("198.51.100.1"), netip.Addr{}, a, nlri4)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, seed{b, opts})
		b, _, err = e.AppendReach(nil, IPv6Unicast, mustAddr("2001:db8::1"), mustAddr("fe80::1"), a, nlri6)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, seed{b, opts})
		b, _, _ = e.AppendWithdraw(nil, IPv6Unicast, nlri6[:5])
		seeds = append(seeds, seed{b, opts})
		b, _, _ = e.AppendWithdraw(nil, IPv4Unicast, nlri4[:5])
		seeds = append(seeds, seed{b, opts})
	}
	return seeds
}
