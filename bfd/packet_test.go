package bfd

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeVectors checks hand-built packets, bit by bit from RFC 5880
// §4.1, against the fields they encode.
func TestDecodeVectors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want Packet
	}{
		{
			// version 1, diag 0; state Down (01), no flags; mult 3; len 24;
			// my disc 1, your disc 0; 1 s, 300 ms, 0.
			name: "down",
			hex:  "20" + "40" + "03" + "18" + "00000001" + "00000000" + "000f4240" + "000493e0" + "00000000",
			want: Packet{Version: 1, State: Down, DetectMult: 3, Length: 24, MyDisc: 1,
				DesiredMinTx: 1000000, RequiredMinRx: 300000},
		},
		{
			// diag 3 (neighbor down); state Up (11) + poll (0x20); mult 5.
			name: "up poll diag",
			hex:  "23" + "e0" + "05" + "18" + "deadbeef" + "01020304" + "0000c350" + "0000c350" + "00000000",
			want: Packet{Version: 1, Diag: DiagNeighborDown, State: Up, Poll: true, DetectMult: 5, Length: 24,
				MyDisc: 0xdeadbeef, YourDisc: 0x01020304, DesiredMinTx: 50000, RequiredMinRx: 50000},
		},
		{
			// Init + final + cpi + demand; trailing bytes beyond length ignored.
			name: "init final cpi demand",
			hex:  "20" + "9a" + "01" + "18" + "00000002" + "00000003" + "00000001" + "00000002" + "00000003" + "ffff",
			want: Packet{Version: 1, State: Init, Final: true, CPI: true, Demand: true, DetectMult: 1, Length: 24,
				MyDisc: 2, YourDisc: 3, DesiredMinTx: 1, RequiredMinRx: 2, RequiredMinEchoRx: 3},
		},
		{
			// simple password "abc", key id 7: type 1, len 6.
			name: "simple password",
			hex:  "20" + "44" + "03" + "1e" + "00000001" + "00000000" + "000f4240" + "000f4240" + "00000000" + "010607616263",
			want: Packet{Version: 1, State: Down, DetectMult: 3, Length: 30, MyDisc: 1,
				DesiredMinTx: 1000000, RequiredMinRx: 1000000,
				Auth: AuthSection{Type: AuthSimplePassword, KeyID: 7, Data: [20]byte{'a', 'b', 'c'}, DataLen: 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			if err := p.Decode(mustHex(t, tt.hex)); err != nil {
				t.Fatal(err)
			}
			if p != tt.want {
				t.Errorf("got  %+v\nwant %+v", p, tt.want)
			}
		})
	}
}

// TestDecodeInvalid checks each §6.8.6 rule the codec enforces.
func TestDecodeInvalid(t *testing.T) {
	good := "20" + "40" + "03" + "18" + "00000001" + "00000000" + "000f4240" + "000493e0" + "00000000"
	patch := func(off int, v byte) string {
		b := mustHex(t, good)
		b[off] = v
		return hex.EncodeToString(b)
	}
	tests := []struct {
		name string
		hex  string
		want error
	}{
		{"short", good[:46], ErrShort},
		{"version 0", patch(0, 0x00), ErrVersion},
		{"version 2", patch(0, 0x40), ErrVersion},
		{"length beyond payload", patch(3, 25), ErrLength},
		{"length below header", patch(3, 23), ErrLength},
		{"auth bit but 24 bytes", patch(1, 0x44), ErrLength},
		{"zero detect mult", patch(2, 0), ErrDetectMult},
		{"multipoint", patch(1, 0x41), ErrMultipoint},
		{"zero my disc", patch(7, 0), ErrMyDisc},
		{"zero your disc while Up", patch(1, 0xc0), ErrYourDisc},
		{"zero your disc while Init", patch(1, 0x80), ErrYourDisc},
		{"poll and final", patch(1, 0x70), ErrPollFinal},
		{"auth type unknown", "20" + "44" + "03" + "1a" + good[8:48] + "0902", ErrAuthSection},
		{"md5 wrong section length", "20" + "44" + "03" + "1a" + good[8:48] + "0202", ErrAuthSection},
		{"password empty", "20" + "44" + "03" + "1b" + good[8:48] + "010301", ErrAuthSection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			if err := p.Decode(mustHex(t, tt.hex)); !errors.Is(err, tt.want) {
				t.Errorf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
	// Down and AdminDown may carry a zero your discriminator.
	for _, st := range []byte{0x00, 0x40} {
		var p Packet
		if err := p.Decode(mustHex(t, patch(1, st))); err != nil {
			t.Errorf("state byte %#x: %v", st, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	base := Packet{Version: 1, Diag: DiagDetectionExpired, State: Up, Poll: true, DetectMult: 3,
		MyDisc: 11, YourDisc: 22, DesiredMinTx: 50000, RequiredMinRx: 60000}
	auths := []Auth{
		{},
		{Type: AuthSimplePassword, KeyID: 1, Key: []byte("secret")},
		{Type: AuthKeyedMD5, KeyID: 2, Key: []byte("md5key")},
		{Type: AuthMeticulousMD5, KeyID: 3, Key: []byte("0123456789abcdef")},
		{Type: AuthKeyedSHA1, KeyID: 4, Key: []byte("sha1key")},
		{Type: AuthMeticulousSHA1, KeyID: 5, Key: []byte("0123456789abcdefghij")},
	}
	for _, a := range auths {
		in := base
		in.Auth.Seq = 77
		b := in.Append(nil, a)
		var out Packet
		if err := out.Decode(b); err != nil {
			t.Fatalf("auth %d: %v", a.Type, err)
		}
		if int(out.Length) != len(b) {
			t.Errorf("auth %d: length %d, encoded %d", a.Type, out.Length, len(b))
		}
		if out.Auth.Type != a.Type || (a.Type != AuthNone && out.Auth.KeyID != a.KeyID) {
			t.Errorf("auth %d: got section %+v", a.Type, out.Auth)
		}
		if a.Type.sectionLen() > 0 && out.Auth.Seq != 77 {
			t.Errorf("auth %d: seq %d", a.Type, out.Auth.Seq)
		}
		out.Length, out.Auth = 0, AuthSection{}
		if out != base {
			t.Errorf("auth %d: got %+v want %+v", a.Type, out, base)
		}
		out2 := Packet{}
		_ = out2.Decode(b)
		if !CheckAuth(b, &out2, a) {
			t.Errorf("auth %d: own packet fails CheckAuth", a.Type)
		}
		if a.Type == AuthNone {
			continue
		}
		wrong := a
		wrong.Key = []byte("other")
		if CheckAuth(b, &out2, wrong) {
			t.Errorf("auth %d: wrong key accepted", a.Type)
		}
		if CheckAuth(b, &out2, Auth{}) {
			t.Errorf("auth %d: accepted without auth configured", a.Type)
		}
		tampered := bytes.Clone(b)
		tampered[16] ^= 1
		if a.Type != AuthSimplePassword && CheckAuth(tampered, &out2, a) {
			t.Errorf("auth %d: tampered packet accepted", a.Type)
		}
	}
}

// TestMD5Vector pins the digest layout: the key padded to 16 bytes sits in
// the digest field while hashing, so an independent computation over the
// same bytes must agree.
func TestMD5Vector(t *testing.T) {
	p := Packet{Version: 1, State: Down, DetectMult: 3, MyDisc: 1, DesiredMinTx: 1000000, RequiredMinRx: 1000000}
	p.Auth.Seq = 5
	a := Auth{Type: AuthKeyedMD5, KeyID: 1, Key: []byte("k")}
	b := p.Append(nil, a)
	want := "20440330" + "00000001" + "00000000" + "000f4240" + "000f4240" + "00000000" + "02180100" + "00000005"
	if got := hex.EncodeToString(b[:32]); got != want {
		t.Fatalf("header+auth prefix %s, want %s", got, want)
	}
	keyed := bytes.Clone(b)
	copy(keyed[32:], append([]byte("k"), make([]byte, 15)...))
	sum := md5.Sum(keyed)
	if !bytes.Equal(b[32:], sum[:]) {
		t.Errorf("digest %x, want %x", b[32:], sum)
	}
}

func TestDecodeNoAlloc(t *testing.T) {
	b := (&Packet{Version: 1, State: Up, DetectMult: 3, MyDisc: 1, YourDisc: 2}).Append(nil, Auth{Type: AuthKeyedSHA1, Key: []byte("x")})
	a := Auth{Type: AuthKeyedSHA1, Key: []byte("x")}
	var p Packet
	if n := testing.AllocsPerRun(100, func() {
		if err := p.Decode(b); err != nil || !CheckAuth(b, &p, a) {
			t.Fatal("decode failed")
		}
		_ = p.Decode(b[:10])
	}); n != 0 {
		t.Errorf("Decode+CheckAuth allocates %v times", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(mustHex(f, "20400318"+"00000001"+"00000000"+"000f4240"+"000493e0"+"00000000"))
	for _, a := range []Auth{{Type: AuthSimplePassword, Key: []byte("pw")}, {Type: AuthMeticulousSHA1, Key: []byte("k")}} {
		f.Add((&Packet{Version: 1, State: Up, DetectMult: 3, MyDisc: 1, YourDisc: 2}).Append(nil, a))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := p.Decode(b); err != nil {
			return
		}
		_ = CheckAuth(b, &p, Auth{Type: p.Auth.Type, Key: []byte("k")})
		// Whatever decodes re-encodes to the same header fields.
		var q Packet
		auth := Auth{}
		if err := q.Decode(p.Append(nil, auth)); err != nil {
			t.Fatalf("re-encoded packet fails: %v (%+v)", err, p)
		}
		q.Length, q.Auth, p.Length, p.Auth = 0, AuthSection{}, 0, AuthSection{}
		if q != p {
			t.Fatalf("round trip: %+v != %+v", q, p)
		}
	})
}
