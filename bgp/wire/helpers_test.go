package wire

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

// hx decodes hex written with spaces, newlines and | separators for reading.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// updBody builds an UPDATE body from hex withdrawn routes, path attributes
// and NLRI, filling in the two length fields.
func updBody(t testing.TB, withdrawn, attrs, nlri string) []byte {
	t.Helper()
	w, a, n := hx(t, withdrawn), hx(t, attrs), hx(t, nlri)
	b := binary.BigEndian.AppendUint16(nil, uint16(len(w)))
	b = append(b, w...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(a)))
	b = append(b, a...)
	return append(b, n...)
}

// msg wraps a body in a header of type typ.
func msg(typ uint8, body []byte) []byte {
	b, start := appendHeader(nil, typ)
	b = append(b, body...)
	binary.BigEndian.PutUint16(b[start+16:], uint16(len(b)))
	return b
}

// The attributes every announcing UPDATE in these tests carries:
// ORIGIN IGP, AS_PATH 64512 (4-octet), NEXT_HOP 198.51.100.1.
const (
	hOrigin  = "40 01 01 00"
	hASPath4 = "40 02 06 02 01 0000fc00"
	hASPath2 = "40 02 04 02 01 fc00"
	hNextHop = "40 03 04 c6336401"
	hBase4   = hOrigin + hASPath4 + hNextHop
	hBase2   = hOrigin + hASPath2 + hNextHop
	// 203.0.113.0/24 and 198.51.100.7/32
	hNLRI = "18 cb0071 | 20 c6336407"
)
