package bfd

import (
	"testing"
	"time"
)

const ms = time.Millisecond

func fast() Config {
	return Config{DesiredMinTx: 50 * ms, RequiredMinRx: 50 * ms, DetectMult: 3}
}

// peerPacket is what a peer with discriminator 99 in state st sends.
func peerPacket(st State, yourDisc uint32) Packet {
	return Packet{Version: 1, State: st, DetectMult: 3, MyDisc: 99, YourDisc: yourDisc,
		DesiredMinTx: 50000, RequiredMinRx: 50000}
}

// recv feeds p to s the way the shell does: encoded, decoded, received.
func recv(t *testing.T, s *Session, p Packet, auth Auth) Actions {
	t.Helper()
	raw := p.Append(nil, auth)
	var q Packet
	if err := q.Decode(raw); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return s.Receive(raw, &q)
}

// up brings a fresh session to Up through Down → Init → Up.
func up(t *testing.T, cfg Config) Session {
	t.Helper()
	s := NewSession(cfg, 7, 0)
	recv(t, &s, peerPacket(Down, 0), Auth{})
	recv(t, &s, peerPacket(Up, 7), Auth{})
	if s.State() != Up {
		t.Fatalf("state %v, want Up", s.State())
	}
	return s
}

// TestTransitions walks the state diagram of RFC 5880 §6.2 / §6.8.6.
func TestTransitions(t *testing.T) {
	tests := []struct {
		name     string
		from     State
		remote   State
		want     State
		diag     Diag
		changed  bool
		yourDisc uint32
	}{
		{"down + down → init", Down, Down, Init, DiagNone, true, 0},
		{"down + init → up", Down, Init, Up, DiagNone, true, 7},
		{"down + up stays down", Down, Up, Down, DiagNone, false, 7},
		{"down + admindown stays down", Down, AdminDown, Down, DiagNone, false, 0},
		{"init + init → up", Init, Init, Up, DiagNone, true, 7},
		{"init + up → up", Init, Up, Up, DiagNone, true, 7},
		{"init + down stays init", Init, Down, Init, DiagNone, false, 7},
		{"init + admindown → down", Init, AdminDown, Down, DiagNeighborDown, true, 7},
		{"up + down → down", Up, Down, Down, DiagNeighborDown, true, 7},
		{"up + admindown → down", Up, AdminDown, Down, DiagNeighborDown, true, 7},
		{"up + init stays up", Up, Init, Up, DiagNone, false, 7},
		{"up + up stays up", Up, Up, Up, DiagNone, false, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSession(fast(), 7, 0)
			switch tt.from {
			case Init:
				recv(t, &s, peerPacket(Down, 0), Auth{})
			case Up:
				s = up(t, fast())
			}
			a := recv(t, &s, peerPacket(tt.remote, tt.yourDisc), Auth{})
			if s.State() != tt.want || a.Changed != tt.changed {
				t.Fatalf("state %v changed %v, want %v %v", s.State(), a.Changed, tt.want, tt.changed)
			}
			if a.Changed && (a.From != tt.from || a.To != tt.want || a.Diag != tt.diag || s.LocalDiag() != tt.diag) {
				t.Errorf("actions %+v, want %v→%v diag %v", a, tt.from, tt.want, tt.diag)
			}
			if a.Changed && !a.SendNow {
				t.Error("a state change is announced at once")
			}
			if s.RemoteDisc() != 99 || s.RemoteState() != tt.remote {
				t.Errorf("remote disc %d state %v", s.RemoteDisc(), s.RemoteState())
			}
		})
	}
}

func TestDetectExpired(t *testing.T) {
	for _, from := range []State{Init, Up} {
		s := NewSession(fast(), 7, 0)
		recv(t, &s, peerPacket(Down, 0), Auth{})
		if from == Up {
			recv(t, &s, peerPacket(Up, 7), Auth{})
		}
		a := s.DetectExpired()
		if !a.Changed || a.From != from || a.To != Down || a.Diag != DiagDetectionExpired {
			t.Errorf("from %v: %+v", from, a)
		}
		if s.RemoteDisc() != 0 || s.DetectTime() != 0 {
			t.Errorf("from %v: remote disc %d detect %v after expiry", from, s.RemoteDisc(), s.DetectTime())
		}
		// Forgetting the peer: the next packet carries your disc 0.
		if p := s.Packet(); p.YourDisc != 0 || p.State != Down || p.Diag != DiagDetectionExpired {
			t.Errorf("from %v: next packet %+v", from, p)
		}
		if s.TxInterval() != time.Second {
			t.Errorf("from %v: tx interval %v while down, want 1s", from, s.TxInterval())
		}
	}
	s := NewSession(fast(), 7, 0)
	if a := s.DetectExpired(); a.Changed {
		t.Errorf("Down stays Down: %+v", a)
	}
}

func TestAdminDown(t *testing.T) {
	s := up(t, fast())
	a := s.SetAdminDown(true)
	if !a.Changed || a.To != AdminDown || a.Diag != DiagAdminDown {
		t.Fatalf("%+v", a)
	}
	if s.DetectTime() != 0 {
		t.Error("no detection while AdminDown")
	}
	if a := recv(t, &s, peerPacket(Up, 7), Auth{}); a.Dropped != DropAdminDown || s.State() != AdminDown {
		t.Errorf("packet while AdminDown: %+v state %v", a, s.State())
	}
	if p := s.Packet(); p.State != AdminDown || p.Diag != DiagAdminDown {
		t.Errorf("packet %+v", p)
	}
	if a := s.SetAdminDown(false); !a.Changed || a.To != Down || a.Diag != DiagNone {
		t.Errorf("%+v", a)
	}
}

func TestDiscriminatorCheck(t *testing.T) {
	s := up(t, fast())
	if a := recv(t, &s, peerPacket(Down, 8), Auth{}); a.Dropped != DropYourDisc || s.State() != Up {
		t.Errorf("wrong your disc: %+v, state %v", a, s.State())
	}
	if p := s.Packet(); p.MyDisc != 7 || p.YourDisc != 99 {
		t.Errorf("packet discs %d/%d", p.MyDisc, p.YourDisc)
	}
}

// TestTimerNegotiation: tx = max(local DesiredMinTx, remote RequiredMinRx);
// detect = remote mult × max(local RequiredMinRx, remote DesiredMinTx);
// at least 1 s tx while not Up.
func TestTimerNegotiation(t *testing.T) {
	tests := []struct {
		name               string
		local              Config
		remoteTx, remoteRx uint32 // µs
		remoteMult         uint8
		wantTx, wantDet    time.Duration
	}{
		{"equal", fast(), 50000, 50000, 3, 50 * ms, 150 * ms},
		{"remote slower rx", fast(), 50000, 300000, 3, 300 * ms, 150 * ms},
		{"remote slower tx", fast(), 300000, 50000, 5, 50 * ms, 1500 * ms},
		{"local slower", Config{DesiredMinTx: 200 * ms, RequiredMinRx: 400 * ms, DetectMult: 3}, 50000, 50000, 2, 200 * ms, 800 * ms},
		{"remote wants none", fast(), 50000, 0, 3, 0, 150 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSession(tt.local, 7, 0)
			p := peerPacket(Down, 0)
			recv(t, &s, p, Auth{})
			p = Packet{Version: 1, State: Up, DetectMult: tt.remoteMult, MyDisc: 99, YourDisc: 7,
				DesiredMinTx: tt.remoteTx, RequiredMinRx: tt.remoteRx}
			recv(t, &s, p, Auth{})
			if s.State() != Up {
				t.Fatalf("state %v", s.State())
			}
			if s.TxInterval() != tt.wantTx || s.DetectTime() != tt.wantDet {
				t.Errorf("tx %v detect %v, want %v %v", s.TxInterval(), s.DetectTime(), tt.wantTx, tt.wantDet)
			}
		})
	}
	s := NewSession(fast(), 7, 0)
	if s.TxInterval() != time.Second || s.Packet().DesiredMinTx != 1000000 {
		t.Errorf("Down: tx %v, advertised %d µs; want 1 s", s.TxInterval(), s.Packet().DesiredMinTx)
	}
	if s.DetectTime() != 0 {
		t.Error("detection armed before any packet")
	}
}

// TestPollSequence: becoming Up and changing intervals while Up start a
// poll sequence; the peer's Final ends it and only then do the slower
// intervals apply; a peer's Poll is answered with one Final.
func TestPollSequence(t *testing.T) {
	s := NewSession(fast(), 7, 0)
	recv(t, &s, peerPacket(Down, 0), Auth{})
	recv(t, &s, peerPacket(Up, 7), Auth{})
	if !s.Polling() {
		t.Fatal("becoming Up lowers DesiredMinTx from 1 s: a poll must start")
	}
	if p := s.Packet(); !p.Poll || p.Final || p.DesiredMinTx != 50000 {
		t.Fatalf("packet %+v", p)
	}
	if s.TxInterval() != 50*ms {
		t.Errorf("a faster tx applies at once, have %v", s.TxInterval())
	}
	final := peerPacket(Up, 7)
	final.Final = true
	recv(t, &s, final, Auth{})
	if s.Polling() || s.Packet().Poll {
		t.Fatal("Final ends the poll")
	}

	// Slower: advertised at once, applied after the Final.
	slow := Config{DesiredMinTx: 300 * ms, RequiredMinRx: 300 * ms, DetectMult: 3}
	a := s.Reconfigure(slow)
	if !a.SendNow || !s.Polling() {
		t.Fatalf("reconfigure while Up: %+v polling %v", a, s.Polling())
	}
	p := s.Packet()
	if !p.Poll || p.DesiredMinTx != 300000 || p.RequiredMinRx != 300000 {
		t.Errorf("poll packet %+v", p)
	}
	if s.TxInterval() != 50*ms {
		t.Errorf("slower tx before the Final: %v", s.TxInterval())
	}
	if s.DetectTime() != 900*ms {
		t.Errorf("a slower rx lengthens detection at once: %v", s.DetectTime())
	}
	recv(t, &s, Packet{Version: 1, State: Up, Final: true, DetectMult: 3, MyDisc: 99, YourDisc: 7,
		DesiredMinTx: 50000, RequiredMinRx: 50000}, Auth{})
	if s.Polling() || s.TxInterval() != 300*ms {
		t.Errorf("after Final: polling %v tx %v", s.Polling(), s.TxInterval())
	}

	// Faster rx: detection stays long until the Final.
	a = s.Reconfigure(fast())
	if s.DetectTime() != 900*ms {
		t.Errorf("faster rx before the Final: detect %v", s.DetectTime())
	}
	if s.TxInterval() != 50*ms {
		t.Errorf("faster tx at once: %v", s.TxInterval())
	}
	recv(t, &s, Packet{Version: 1, State: Up, Final: true, DetectMult: 3, MyDisc: 99, YourDisc: 7,
		DesiredMinTx: 50000, RequiredMinRx: 50000}, Auth{})
	if s.DetectTime() != 150*ms {
		t.Errorf("after Final: detect %v", s.DetectTime())
	}

	// The peer polls: one Final, not a Poll, in the reply.
	poll := peerPacket(Up, 7)
	poll.Poll = true
	if a := recv(t, &s, poll, Auth{}); !a.SendNow {
		t.Error("a Poll is answered at once")
	}
	if p := s.Packet(); !p.Final || p.Poll {
		t.Errorf("reply %+v", p)
	}
	if p := s.Packet(); p.Final {
		t.Error("one Final per Poll")
	}

	// Unchanged intervals start no poll.
	if a := s.Reconfigure(fast()); a.SendNow || s.Polling() {
		t.Errorf("no-op reconfigure: %+v", a)
	}
}

func TestPassive(t *testing.T) {
	cfg := fast()
	cfg.Passive = true
	s := NewSession(cfg, 7, 0)
	if s.TxInterval() != 0 {
		t.Fatal("passive sends nothing before hearing the peer")
	}
	recv(t, &s, peerPacket(Down, 0), Auth{})
	if s.TxInterval() == 0 {
		t.Fatal("passive answers once it heard the peer")
	}
}

func TestDemandStopsPeriodicTx(t *testing.T) {
	s := up(t, fast())
	p := peerPacket(Up, 7)
	p.Demand = true
	recv(t, &s, p, Auth{})
	if s.TxInterval() != 0 {
		t.Errorf("peer in demand mode: tx %v", s.TxInterval())
	}
	if s.Packet().Demand {
		t.Error("we never ask for demand mode")
	}
}

func TestAuth(t *testing.T) {
	md5 := Auth{Type: AuthMeticulousMD5, KeyID: 1, Key: []byte("secret")}
	sha := Auth{Type: AuthKeyedSHA1, KeyID: 2, Key: []byte("secret")}
	pw := Auth{Type: AuthSimplePassword, KeyID: 3, Key: []byte("secret")}
	tests := []struct {
		name   string
		local  Auth
		remote Auth
		want   Drop
	}{
		{"none/none", Auth{}, Auth{}, DropNone},
		{"configured, absent", md5, Auth{}, DropAuth},
		{"present, not configured", Auth{}, md5, DropAuth},
		{"type mismatch", md5, sha, DropAuth},
		{"key mismatch", sha, Auth{Type: AuthKeyedSHA1, KeyID: 2, Key: []byte("other")}, DropAuth},
		{"key id mismatch", sha, Auth{Type: AuthKeyedSHA1, KeyID: 9, Key: []byte("secret")}, DropAuth},
		{"password", pw, pw, DropNone},
		{"password mismatch", pw, Auth{Type: AuthSimplePassword, KeyID: 3, Key: []byte("secreT")}, DropAuth},
		{"md5", md5, md5, DropNone},
		{"sha1", sha, sha, DropNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fast()
			cfg.Auth = tt.local
			s := NewSession(cfg, 7, 0)
			a := recv(t, &s, peerPacket(Down, 0), tt.remote)
			if a.Dropped != tt.want {
				t.Errorf("dropped %v, want %v", a.Dropped, tt.want)
			}
			if (s.State() == Init) != (tt.want == DropNone) {
				t.Errorf("state %v", s.State())
			}
		})
	}
}

func TestAuthSequence(t *testing.T) {
	tests := []struct {
		name string
		auth Auth
		seqs []uint32
		want []Drop
	}{
		{"meticulous grows", Auth{Type: AuthMeticulousSHA1, Key: []byte("k")},
			[]uint32{10, 11, 11, 10, 20, 30}, []Drop{DropNone, DropNone, DropAuthSeq, DropAuthSeq, DropNone, DropAuthSeq}},
		{"keyed may repeat", Auth{Type: AuthKeyedMD5, Key: []byte("k")},
			[]uint32{10, 10, 11, 9, 20, 30}, []Drop{DropNone, DropNone, DropNone, DropAuthSeq, DropNone, DropAuthSeq}},
		{"wraps", Auth{Type: AuthMeticulousMD5, Key: []byte("k")},
			[]uint32{1<<32 - 2, 1<<32 - 1, 0, 3}, []Drop{DropNone, DropNone, DropNone, DropNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fast()
			cfg.Auth = tt.auth
			s := NewSession(cfg, 7, 0)
			for i, seq := range tt.seqs {
				p := peerPacket(Down, 0)
				p.Auth.Seq = seq
				if a := recv(t, &s, p, tt.auth); a.Dropped != tt.want[i] {
					t.Errorf("seq %d (#%d): dropped %v, want %v", seq, i, a.Dropped, tt.want[i])
				}
			}
		})
	}
	// Our own numbers grow every packet.
	cfg := fast()
	cfg.Auth = Auth{Type: AuthMeticulousSHA1, Key: []byte("k")}
	s := NewSession(cfg, 7, 41)
	if a, b := s.Packet().Auth.Seq, s.Packet().Auth.Seq; a != 41 || b != 42 {
		t.Errorf("sent seqs %d, %d", a, b)
	}
}

func TestJitter(t *testing.T) {
	for r := uint64(0); r < 200; r++ {
		if d := Jitter(100*ms, 3, r); d < 75*ms || d > 100*ms {
			t.Fatalf("mult 3: %v", d)
		}
		if d := Jitter(100*ms, 1, r); d < 75*ms || d > 90*ms {
			t.Fatalf("mult 1: %v", d)
		}
	}
	if Jitter(100*ms, 3, 0) != 75*ms || Jitter(100*ms, 3, 25) != 100*ms || Jitter(100*ms, 1, 15) != 90*ms {
		t.Error("bounds")
	}
}
