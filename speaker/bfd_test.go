package speaker

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

func TestBFDTearsDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   bfd.Event
		want bool
	}{
		{"up to down", bfd.Event{From: bfd.Up, To: bfd.Down, RemoteState: bfd.Up}, true},
		{"up to init", bfd.Event{From: bfd.Up, To: bfd.Init, RemoteState: bfd.Down}, true},
		{"peer admin down", bfd.Event{From: bfd.Up, To: bfd.Down, RemoteState: bfd.AdminDown}, false},
		{"we admin down", bfd.Event{From: bfd.Up, To: bfd.AdminDown}, false},
		{"coming up", bfd.Event{From: bfd.Init, To: bfd.Up}, false},
		{"never up", bfd.Event{From: bfd.Down, To: bfd.Init}, false},
	} {
		if got := tc.ev.PathDown(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBFDWanted(t *testing.T) {
	a := netip.MustParseAddr
	cfg := bfd.DefaultConfig()
	peers := map[string]bfdPeer{
		"r1": {addr: a("198.51.100.1"), cfg: cfg},
		"r2": {addr: a("::ffff:198.51.100.2"), cfg: cfg, multihop: true},
		"r3": {addr: a("2001:db8::3"), cfg: cfg},
	}
	for _, tc := range []struct {
		name        string
		established map[string]netip.Addr
		want        map[string]bfdWant
	}{
		{"none established", nil, map[string]bfdWant{}},
		{"some", map[string]netip.Addr{"r1": a("198.51.100.10"), "r2": a("::ffff:198.51.100.10"), "other": a("198.51.100.10")},
			map[string]bfdWant{
				"r1": {key: bfd.Key{Peer: a("198.51.100.1"), Local: a("198.51.100.10")}, cfg: cfg},
				"r2": {key: bfd.Key{Peer: a("198.51.100.2"), Local: a("198.51.100.10"), Multihop: true}, cfg: cfg},
			}},
		{"no local address", map[string]netip.Addr{"r3": {}}, map[string]bfdWant{}},
	} {
		if got := bfdWanted(peers, tc.established); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestBFDPeers(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	peer := func(name, policy string, hops *int32) lbmodel.Peer {
		return lbmodel.Peer{Name: name, Address: netip.MustParseAddr("198.51.100.1"),
			Spec: v1alpha1.BGPRouterSpec{BFDPolicy: policy, EBGPMultiHop: hops}}
	}
	policies := map[string]*v1alpha1.BFDPolicySpec{
		"fast": {ReceiveInterval: i32(100), TransmitInterval: i32(100)},
		"echo": {EchoMode: true},
	}
	fast := bfd.Config{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 3}
	for _, tc := range []struct {
		name     string
		peers    []lbmodel.Peer
		want     map[string]bfdPeer
		problems []string
	}{
		{"no policy", []lbmodel.Peer{peer("r", "", nil)}, map[string]bfdPeer{}, nil},
		{"single hop", []lbmodel.Peer{peer("r", "fast", nil)},
			map[string]bfdPeer{"r": {addr: netip.MustParseAddr("198.51.100.1"), cfg: fast}}, nil},
		{"multihop", []lbmodel.Peer{peer("r", "fast", i32(2))},
			map[string]bfdPeer{"r": {addr: netip.MustParseAddr("198.51.100.1"), cfg: fast, multihop: true}}, nil},
		{"ttl 1 is single hop", []lbmodel.Peer{peer("r", "fast", i32(1))},
			map[string]bfdPeer{"r": {addr: netip.MustParseAddr("198.51.100.1"), cfg: fast}}, nil},
		{"missing policy", []lbmodel.Peer{peer("r", "gone", nil)}, map[string]bfdPeer{}, []string{`spec.bfdPolicy "gone": no such BFDPolicy`}},
		{"echo", []lbmodel.Peer{peer("r", "echo", nil)},
			map[string]bfdPeer{"r": {addr: netip.MustParseAddr("198.51.100.1"), cfg: bfd.DefaultConfig()}}, []string{"echoMode is ignored"}},
	} {
		got, problems := bfdPeers(tc.peers, policies)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		if len(problems) != len(tc.problems) {
			t.Errorf("%s: problems %q, want %q", tc.name, problems, tc.problems)
			continue
		}
		for i, w := range tc.problems {
			if !strings.Contains(problems[i], w) {
				t.Errorf("%s: problem %q lacks %q", tc.name, problems[i], w)
			}
		}
	}
}

func TestBFDReport(t *testing.T) {
	ms := time.Millisecond
	t0 := time.Date(2026, 12, 7, 17, 0, 0, 400_000_000, time.UTC)
	at := func(d time.Duration) *metav1.Time { m := metav1.NewTime(t0.Add(d).Truncate(time.Second)); return &m }
	dur := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	up := bfd.Status{State: bfd.Up, RemoteState: bfd.Up, TxInterval: 300 * ms, DetectTime: 1500 * ms, RemoteMult: 5}
	upAfterDown := up
	upAfterDown.LastDown, upAfterDown.LastDownDiag, upAfterDown.LastDownRemoteState = t0.Add(time.Minute), bfd.DiagNeighborDown, bfd.AdminDown
	teardown := bfdTeardown{diag: bfd.DiagDetectionExpired, remote: bfd.Down, at: t0}
	for _, tc := range []struct {
		name string
		st   *bfd.Status
		td   bfdTeardown
		want v1alpha1.BGPSessionBFD
	}{
		{"up", &up, bfdTeardown{}, v1alpha1.BGPSessionBFD{State: "Up", RemoteState: "Up",
			TransmitInterval: dur(300 * ms), ReceiveInterval: dur(300 * ms), DetectMultiplier: 5}},
		{"not heard from the peer", &bfd.Status{State: bfd.Down, RemoteState: bfd.Down, TxInterval: time.Second},
			bfdTeardown{}, v1alpha1.BGPSessionBFD{State: "Down", RemoteState: "Down", TransmitInterval: dur(time.Second)}},
		{"torn down, no session now", nil, teardown,
			v1alpha1.BGPSessionBFD{State: "Down", LastDownReason: "DetectionTimeExpired", LastDownRemoteState: "Down", LastDownTime: at(0)}},
		{"a new session since the teardown", &up, teardown, v1alpha1.BGPSessionBFD{State: "Up", RemoteState: "Up",
			TransmitInterval: dur(300 * ms), ReceiveInterval: dur(300 * ms), DetectMultiplier: 5,
			LastDownReason: "DetectionTimeExpired", LastDownRemoteState: "Down", LastDownTime: at(0)}},
		{"the session's own later down wins", &upAfterDown, teardown, v1alpha1.BGPSessionBFD{State: "Up", RemoteState: "Up",
			TransmitInterval: dur(300 * ms), ReceiveInterval: dur(300 * ms), DetectMultiplier: 5,
			LastDownReason: "NeighborDown", LastDownRemoteState: "AdminDown", LastDownTime: at(time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bfdReport(tc.st, tc.td); !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}
