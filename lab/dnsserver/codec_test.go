package dnsserver

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func mustQuery(t testing.TB, id uint16, name string, qtype uint16) []byte {
	t.Helper()
	q, err := buildQuery(id, name, qtype)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestAnswers(t *testing.T) {
	v4 := &Server{Node: "node1", Addr: netip.MustParseAddr("203.0.113.53")}
	v6 := &Server{Node: "node2", Addr: netip.MustParseAddr("2001:db8:100::53")}
	for _, c := range []struct {
		name  string
		d     *Server
		qtype uint16
		want  Answer
	}{
		{"A", v4, typeA, Answer{Name: "pihole.lab.", Addrs: []netip.Addr{v4.Addr}, Node: "node1"}},
		{"AAAA of an IPv4 server", v4, typeAAAA, Answer{Name: "pihole.lab.", Node: "node1"}},
		{"TXT", v4, typeTXT, Answer{Name: "pihole.lab.", Node: "node1"}},
		{"ANY", v4, typeANY, Answer{Name: "pihole.lab.", Addrs: []netip.Addr{v4.Addr}, Node: "node1"}},
		{"AAAA", v6, typeAAAA, Answer{Name: "pihole.lab.", Addrs: []netip.Addr{v6.Addr}, Node: "node2"}},
		{"MX", v6, 15, Answer{Name: "pihole.lab.", Node: "node2"}},
	} {
		resp := c.d.Answer(mustQuery(t, 0xbeef, "pihole.lab", c.qtype))
		got, err := parseResponse(resp, 0xbeef, "pihole.lab.")
		if err != nil || got.Name != c.want.Name || got.Node != c.want.Node || !slices.Equal(got.Addrs, c.want.Addrs) {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
	if got := (Answer{Addrs: []netip.Addr{v4.Addr}, Node: "node1"}).String(); got != "203.0.113.53 from node1" {
		t.Errorf("String() = %q", got)
	}
	if v4.Queries() != 4 || v6.Queries() != 2 {
		t.Errorf("queries %d %d", v4.Queries(), v6.Queries())
	}
}

func TestDNSRefusals(t *testing.T) {
	d := &Server{Node: "node1", Addr: netip.MustParseAddr("203.0.113.53")}
	q := mustQuery(t, 7, "pihole.lab", typeA)
	rcode := func(resp []byte) int {
		t.Helper()
		if len(resp) < dnsHeaderLen {
			t.Fatalf("response %x", resp)
		}
		return int(binary.BigEndian.Uint16(resp[2:]) & 0xF)
	}
	// A response is not answered; nor is a runt.
	resp := d.Answer(q)
	if d.Answer(resp) != nil || d.Answer(q[:5]) != nil {
		t.Error("answered a response or a runt")
	}
	// An opcode other than QUERY.
	status := slices.Clone(q)
	status[2] |= 2 << 3
	if rc := rcode(d.Answer(status)); rc != rcodeNotImp {
		t.Errorf("STATUS: rcode %d", rc)
	}
	// Two questions, a truncated question, a compressed question name.
	two := slices.Clone(q)
	two[5] = 2
	comp := append(slices.Clone(q[:dnsHeaderLen]), 0xC0, 0x0C, 0, 1, 0, 1)
	for name, m := range map[string][]byte{"two questions": two, "truncated": q[:len(q)-3], "compressed": comp} {
		if rc := rcode(d.Answer(m)); rc != rcodeFormErr {
			t.Errorf("%s: rcode %d", name, rc)
		}
	}
	// Class CH.
	ch := slices.Clone(q)
	ch[len(ch)-1] = 3
	if rc := rcode(d.Answer(ch)); rc != rcodeRefused {
		t.Errorf("CH: rcode %d", rc)
	}
	// The client sees a refusal as an error naming it, and checks ids and
	// names.
	if _, err := parseResponse(d.Answer(ch), 7, "pihole.lab"); err == nil || !strings.Contains(err.Error(), "REFUSED") {
		t.Errorf("REFUSED: %v", err)
	}
	if _, err := parseResponse(resp, 8, "pihole.lab"); err != errWrongID {
		t.Errorf("wrong id: %v", err)
	}
	if _, err := parseResponse(resp, 7, "other.lab"); err == nil {
		t.Error("answer for another name accepted")
	}
	// The RD flag is echoed.
	if binary.BigEndian.Uint16(resp[2:])&(flagQR|flagAA|flagRD) != flagQR|flagAA|flagRD {
		t.Errorf("flags %#x", binary.BigEndian.Uint16(resp[2:]))
	}
}

func TestNames(t *testing.T) {
	for _, bad := range []string{"a..b", strings.Repeat("x", 64) + ".lab", strings.Repeat("abcdefg.", 40)} {
		if _, err := encodeName(bad); err == nil {
			t.Errorf("encodeName(%q) succeeded", bad)
		}
	}
	for in, want := range map[string]string{"": ".", ".": ".", "pihole.lab": "pihole.lab.", "pihole.lab.": "pihole.lab."} {
		b, err := encodeName(in)
		if err != nil {
			t.Fatal(err)
		}
		got, next, err := readName(b, 0)
		if err != nil || got != want || next != len(b) {
			t.Errorf("%q: %q %d %v", in, got, next, err)
		}
	}
	// A pointer loop ends.
	if _, _, err := readName([]byte{0xC0, 0x00}, 0); err == nil {
		t.Error("pointer loop accepted")
	}
}

// FuzzParseResponse: whatever comes back, Query's parser neither panics nor
// loops.
func FuzzParseResponse(f *testing.F) {
	d := &Server{Node: "node1", Addr: netip.MustParseAddr("203.0.113.53")}
	for _, qt := range []uint16{typeA, typeAAAA, typeTXT, typeANY} {
		f.Add(d.Answer(mustQuery(f, 1, "pihole.lab", qt)))
	}
	f.Add([]byte{0, 1, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xC0, 0x0C})
	f.Fuzz(func(t *testing.T, msg []byte) {
		a, err := parseResponse(msg, 1, "pihole.lab")
		if err == nil && a.Name != "pihole.lab." {
			t.Fatalf("answer for %q", a.Name)
		}
	})
}

// FuzzAnswer: any request either gets no answer or one Query's parser reads.
func FuzzAnswer(f *testing.F) {
	d := &Server{Node: "node1", Addr: netip.MustParseAddr("203.0.113.53")}
	f.Add(mustQuery(f, 1, "pihole.lab", typeA))
	f.Add(mustQuery(f, 1, ".", typeTXT))
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63})
	f.Fuzz(func(t *testing.T, msg []byte) {
		resp := d.Answer(msg)
		if resp == nil {
			return
		}
		if len(resp) < dnsHeaderLen || binary.BigEndian.Uint16(resp) != binary.BigEndian.Uint16(msg) || resp[2]&0x80 == 0 {
			t.Fatalf("response %x to %x", resp, msg)
		}
		if q, rc, _ := parseQuery(msg); rc == rcodeOK && q.qclass == classIN {
			if _, err := parseResponse(resp, q.id, q.name); err != nil {
				t.Fatalf("own response unreadable: %v\nquery %x\nresponse %x", err, msg, resp)
			}
		}
	})
}
