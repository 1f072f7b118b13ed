package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// A minimal DNS codec (RFC 1035), enough for the responder and for
// Query: one question, A, AAAA and TXT records, name compression on reading.

const (
	dnsHeaderLen = 12

	typeA    = 1
	typeTXT  = 16
	typeAAAA = 28
	typeANY  = 255
	classIN  = 1

	rcodeOK       = 0
	rcodeFormErr  = 1
	rcodeNotImp   = 4
	rcodeRefused  = 5
	maxNameLen    = 255
	maxLabelLen   = 63
	maxPointerHop = 32

	flagQR = 0x8000
	flagAA = 0x0400
	flagTC = 0x0200
	flagRD = 0x0100
)

var errShort = errors.New("dns: message too short")

// rcodeName names the response codes Query may see.
func rcodeName(rc int) string {
	switch rc {
	case 0:
		return "NOERROR"
	case 1:
		return "FORMERR"
	case 2:
		return "SERVFAIL"
	case 3:
		return "NXDOMAIN"
	case 4:
		return "NOTIMP"
	case 5:
		return "REFUSED"
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// encodeName writes a name in wire form ("pihole.lab" and "pihole.lab."
// alike; "." or "" is the root).
func encodeName(name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".")
	var b []byte
	if name != "" {
		for _, l := range strings.Split(name, ".") {
			if l == "" || len(l) > maxLabelLen {
				return nil, fmt.Errorf("dns: bad name %q", name)
			}
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	b = append(b, 0)
	if len(b) > maxNameLen {
		return nil, fmt.Errorf("dns: name %q too long", name)
	}
	return b, nil
}

// readName decodes the name at off, following compression pointers, and
// returns it in presentation form (with the final dot) and the offset
// after it in msg.
func readName(msg []byte, off int) (string, int, error) {
	var sb strings.Builder
	next := -1 // where the name ends in the message, once a pointer was followed
	hops, n := 0, 0
	for {
		if off >= len(msg) {
			return "", 0, errShort
		}
		l := int(msg[off])
		switch {
		case l == 0:
			off++
			if next < 0 {
				next = off
			}
			if sb.Len() == 0 {
				sb.WriteByte('.')
			}
			return sb.String(), next, nil
		case l&0xC0 == 0xC0:
			if off+1 >= len(msg) {
				return "", 0, errShort
			}
			if hops++; hops > maxPointerHop {
				return "", 0, errors.New("dns: compression loop")
			}
			if next < 0 {
				next = off + 2
			}
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
		case l&0xC0 != 0:
			return "", 0, fmt.Errorf("dns: label type %#x", l&0xC0)
		default:
			if off+1+l > len(msg) {
				return "", 0, errShort
			}
			if n += l + 1; n > maxNameLen {
				return "", 0, errors.New("dns: name too long")
			}
			sb.Write(msg[off+1 : off+1+l])
			sb.WriteByte('.')
			off += 1 + l
		}
	}
}

// query is a parsed request.
type query struct {
	id       uint16
	flags    uint16
	name     string
	qtype    uint16
	qclass   uint16
	question []byte // name, type and class, as sent
}

// parseQuery reads a request with exactly one question. A message that is
// not a query at all (too short, or a response) gives ok false: it gets no
// answer. Otherwise a non-zero rcode says why the query is refused.
func parseQuery(msg []byte) (q query, rcode int, ok bool) {
	if len(msg) < dnsHeaderLen {
		return q, 0, false
	}
	q.id = binary.BigEndian.Uint16(msg)
	q.flags = binary.BigEndian.Uint16(msg[2:])
	if q.flags&flagQR != 0 {
		return q, 0, false
	}
	if opcode := (q.flags >> 11) & 0xF; opcode != 0 {
		return q, rcodeNotImp, true
	}
	if binary.BigEndian.Uint16(msg[4:]) != 1 {
		return q, rcodeFormErr, true
	}
	off := dnsHeaderLen
	for { // a question name is never compressed: there is nothing before it
		if off >= len(msg) {
			return q, rcodeFormErr, true
		}
		l := int(msg[off])
		if l == 0 {
			off++
			break
		}
		if l > maxLabelLen || off+1+l > len(msg) || off+1+l-dnsHeaderLen > maxNameLen {
			return q, rcodeFormErr, true
		}
		off += 1 + l
	}
	if off+4 > len(msg) {
		return q, rcodeFormErr, true
	}
	q.name, _, _ = readName(msg, dnsHeaderLen)
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	q.qclass = binary.BigEndian.Uint16(msg[off+2:])
	q.question = msg[dnsHeaderLen : off+4]
	return q, rcodeOK, true
}

// rr is a record to answer with; its owner is always the question's name.
type rr struct {
	typ  uint16
	data []byte
}

func aRecord(a netip.Addr) rr {
	if a.Is4() {
		b := a.As4()
		return rr{typeA, b[:]}
	}
	b := a.As16()
	return rr{typeAAAA, b[:]}
}

func txtRecord(s string) rr {
	if len(s) > 255 {
		s = s[:255]
	}
	return rr{typeTXT, append([]byte{byte(len(s))}, s...)}
}

// buildResponse answers q: header, the question as asked, then the
// answer and additional records, owned by the question's name through a
// pointer to it.
func buildResponse(q query, rcode int, answers, additional []rr) []byte {
	b := make([]byte, dnsHeaderLen, 512)
	binary.BigEndian.PutUint16(b, q.id)
	// QR and AA set; the opcode and RD echoed.
	flags := uint16(flagQR|flagAA) | q.flags&(0xF<<11|flagRD) | uint16(rcode&0xF)
	binary.BigEndian.PutUint16(b[2:], flags)
	if q.question == nil {
		return b // no (readable) question to echo
	}
	binary.BigEndian.PutUint16(b[4:], 1)
	binary.BigEndian.PutUint16(b[6:], uint16(len(answers)))
	binary.BigEndian.PutUint16(b[10:], uint16(len(additional)))
	b = append(b, q.question...)
	for _, r := range append(answers[:len(answers):len(answers)], additional...) {
		b = binary.BigEndian.AppendUint16(b, 0xC000|dnsHeaderLen)
		b = binary.BigEndian.AppendUint16(b, r.typ)
		b = binary.BigEndian.AppendUint16(b, classIN)
		b = binary.BigEndian.AppendUint32(b, 0) // TTL 0: nothing caches a lab answer
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.data)))
		b = append(b, r.data...)
	}
	return b
}

// buildQuery makes a recursive query for name.
func buildQuery(id uint16, name string, qtype uint16) ([]byte, error) {
	n, err := encodeName(name)
	if err != nil {
		return nil, err
	}
	b := make([]byte, dnsHeaderLen, dnsHeaderLen+len(n)+4)
	binary.BigEndian.PutUint16(b, id)
	binary.BigEndian.PutUint16(b[2:], flagRD)
	binary.BigEndian.PutUint16(b[4:], 1)
	b = append(b, n...)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, classIN)
	return b, nil
}

// Answer is what Query got back.
type Answer struct {
	// Name is the name asked for, in presentation form ("pihole.lab.").
	Name string
	// Addrs are the A and AAAA records for Name, in order.
	Addrs []netip.Addr
	// Node is the host whose responder answered (its TXT record); empty
	// when the server is not one of the lab's.
	Node string
}

// String renders the answer as "203.0.113.53 from node1".
func (a Answer) String() string {
	parts := make([]string, 0, len(a.Addrs)+2)
	for _, ad := range a.Addrs {
		parts = append(parts, ad.String())
	}
	if len(parts) == 0 {
		parts = append(parts, "(no address)")
	}
	if a.Node != "" {
		parts = append(parts, "from", a.Node)
	}
	return strings.Join(parts, " ")
}

// parseResponse reads the response to the query with this id and name.
// A response with another id is errWrongID (UDP: a late answer to an
// earlier try); an rcode other than NOERROR is an error naming it.
func parseResponse(msg []byte, id uint16, name string) (Answer, error) {
	if len(msg) < dnsHeaderLen {
		return Answer{}, errShort
	}
	if binary.BigEndian.Uint16(msg) != id {
		return Answer{}, errWrongID
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&flagQR == 0 {
		return Answer{}, errors.New("dns: not a response")
	}
	if flags&flagTC != 0 {
		return Answer{}, errors.New("dns: truncated response")
	}
	if rc := int(flags & 0xF); rc != rcodeOK {
		return Answer{}, fmt.Errorf("dns: %s", rcodeName(rc))
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	counts := []int{int(binary.BigEndian.Uint16(msg[6:])), int(binary.BigEndian.Uint16(msg[8:])), int(binary.BigEndian.Uint16(msg[10:]))}
	want := strings.TrimSuffix(name, ".") + "."
	ans := Answer{Name: want}
	off := dnsHeaderLen
	for range qd {
		qn, next, err := readName(msg, off)
		if err != nil {
			return Answer{}, err
		}
		if !strings.EqualFold(qn, want) {
			return Answer{}, fmt.Errorf("dns: response to %q, asked %q", qn, want)
		}
		if off = next + 4; off > len(msg) {
			return Answer{}, errShort
		}
	}
	for section, n := range counts {
		for range n {
			owner, next, err := readName(msg, off)
			if err != nil {
				return Answer{}, err
			}
			if next+10 > len(msg) {
				return Answer{}, errShort
			}
			typ := binary.BigEndian.Uint16(msg[next:])
			rdlen := int(binary.BigEndian.Uint16(msg[next+8:]))
			start := next + 10
			if start+rdlen > len(msg) {
				return Answer{}, errShort
			}
			data := msg[start : start+rdlen]
			off = start + rdlen
			if !strings.EqualFold(owner, want) {
				continue
			}
			switch {
			case section == 0 && (typ == typeA && rdlen == 4 || typ == typeAAAA && rdlen == 16):
				a, _ := netip.AddrFromSlice(data)
				ans.Addrs = append(ans.Addrs, a)
			case typ == typeTXT:
				for len(data) > 0 {
					l := int(data[0])
					if 1+l > len(data) {
						return Answer{}, errShort
					}
					ans.Node += string(data[1 : 1+l])
					data = data[1+l:]
				}
			}
		}
	}
	return ans, nil
}

var errWrongID = errors.New("dns: response to another query")
