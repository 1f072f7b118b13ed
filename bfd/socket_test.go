package bfd

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	if unix.SizeofCmsghdr == 16 {
		binary.NativeEndian.PutUint64(b, uint64(unix.CmsgLen(len(data))))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(unix.CmsgLen(len(data))))
	}
	lt := unix.SizeofCmsghdr - 8
	binary.NativeEndian.PutUint32(b[lt:], uint32(level))
	binary.NativeEndian.PutUint32(b[lt+4:], uint32(typ))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func TestParseControl(t *testing.T) {
	pkt4 := append(append(u32(3), 198, 51, 100, 21), 198, 51, 100, 22) // ifindex, spec_dst, addr
	v6 := netip.MustParseAddr("2001:db8::22").As16()
	pkt6 := append(v6[:], u32(5)...)
	tests := []struct {
		name string
		oob  []byte
		want rxMeta
	}{
		{"empty", nil, rxMeta{ttl: -1}},
		{"ipv4", append(cmsg(unix.IPPROTO_IP, unix.IP_TTL, u32(255)), cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pkt4)...),
			rxMeta{ttl: 255, dst: netip.MustParseAddr("198.51.100.22"), ifindex: 3}},
		{"ipv6", append(cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pkt6), cmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, u32(254))...),
			rxMeta{ttl: 254, dst: netip.MustParseAddr("2001:db8::22"), ifindex: 5}},
		{"truncated", cmsg(unix.IPPROTO_IP, unix.IP_TTL, u32(255))[:unix.SizeofCmsghdr+2], rxMeta{ttl: -1}},
		{"unknown type", cmsg(unix.IPPROTO_IP, 99, u32(1)), rxMeta{ttl: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseControl(tt.oob); got != tt.want {
				t.Errorf("got %+v want %+v", got, tt.want)
			}
		})
	}
}

func TestTTLCheck(t *testing.T) {
	single := &session{key: Key{}}
	multi := &session{key: Key{Multihop: true}, minTTL: 254}
	for _, tt := range []struct {
		s    *session
		ttl  int
		want bool
	}{{single, 255, true}, {single, 254, false}, {single, -1, false}, {multi, 254, true}, {multi, 253, false}, {multi, 255, true}, {multi, -1, false}} {
		if got := tt.s.ttlOK(tt.ttl); got != tt.want {
			t.Errorf("multihop %v ttl %d: %v", tt.s.key.Multihop, tt.ttl, got)
		}
	}
}
