package metallb

import (
	"os"
	"strings"
	"testing"
)

func TestLegacyEveryField(t *testing.T) {
	r, d := convertPath(t, "testdata/legacy-full.yaml")
	if len(d.pools) != 2 || len(d.routers) != 2 || len(d.bgp) != 2 || len(d.l2) != 1 || len(d.bfd) != 1 || len(d.secrets) != 1 {
		t.Fatalf("counts: pools %d routers %d bgp %d l2 %d bfd %d secrets %d",
			len(d.pools), len(d.routers), len(d.bgp), len(d.l2), len(d.bfd), len(d.secrets))
	}
	p := d.pools[0].Spec
	if strings.Join(p.Addresses, ",") != "203.0.113.0/24,198.18.0.10-198.18.0.20,2001:db8:100::/120" ||
		p.AutoAssignEnabled() || !p.AvoidBuggyIPs {
		t.Errorf("pool pub: %+v", p)
	}
	r0 := d.routers[0].Spec
	if r0.PeerPort != 1179 || r0.HoldTime.Duration.String() != "1m30s" || r0.KeepaliveTime.Duration.String() != "30s" ||
		r0.RouterID != "198.51.100.200" || r0.SourceAddress != "198.51.100.10" || r0.BFDPolicy != "fast" ||
		r0.EBGPMultiHop != nil || r0.PasswordSecret == nil || r0.PasswordSecret.Name != d.secrets[0].Name ||
		len(r0.NodeSelectors) != 1 || r0.NodeSelectors[0].MatchLabels["rack"] != "r1" ||
		string(r0.NodeSelectors[0].MatchExpressions[0].Operator) != "In" {
		t.Errorf("router 0: %+v", r0)
	}
	if d.secrets[0].StringData["password"] != "sekret" {
		t.Errorf("secret: %+v", d.secrets[0])
	}
	if r1 := d.routers[1].Spec; r1.EBGPMultiHop == nil || *r1.EBGPMultiHop != 255 || d.routers[1].Name != "peer-2001-db8--1" {
		t.Errorf("router 1: %s %+v", d.routers[1].Name, r1)
	}
	a := d.bgp[0].Spec
	if d.bgp[0].Name != "pub-0" || *a.AggregationLength != 32 || *a.LocalPref != 100 ||
		strings.Join(a.Communities, ",") != "64512:300,64512:7" || strings.Join(a.LargeCommunities, ",") != "64512:1:2" {
		t.Errorf("policy pub-0: %+v", a)
	}
	if b := d.bgp[1].Spec; *b.AggregationLength != 24 || *b.AggregationLengthV6 != 120 || len(b.Communities) != 0 {
		t.Errorf("policy pub-1: %+v", b)
	}
	if strings.Join(d.l2[0].Spec.IPPools, ",") != "lan" {
		t.Errorf("l2: %+v", d.l2[0])
	}
	if f := d.bfd[0].Spec; *f.ReceiveInterval != 100 || *f.TransmitInterval != 150 || *f.DetectMultiplier != 5 || !f.EchoMode || !f.PassiveMode {
		t.Errorf("bfd: %+v", f)
	}
	wantNotes(t, r,
		"spec.echoInterval: not carried", "spec.minimumTtl: not carried",
		"peers[0]: ebgp-multihop: not carried: applies only to eBGP",
		"peers[0]: password: moved to Secret peer-198-51-100-1-bgp-password",
		`peers[1]: vrf: not carried: bgplb has no VRFs; the session ran in VRF "red"`,
		"203.0.113.5/24 has host bits set: written as 203.0.113.0/24",
		`bgp-advertisements[1].communities[0]: not carried: "nowhere"`,
		"BFDPolicy fast: spec.echoMode is ignored",
		"protocol: empty, which differs from MetalLB: MetalLB answered ARP/NDP on every interface")
	if !strings.Contains(d.comments, "(9):") || !strings.Contains(d.comments, "#   - BFDPolicy fast: spec.echoMode is ignored") {
		t.Errorf("comments at the top:\n%s", d.comments)
	}
}

func TestIPAddressPool(t *testing.T) {
	r, d := convertPath(t, "testdata/crds/ipaddresspool.yaml")
	if len(d.pools) != 1 || len(r.Notes) != 0 {
		t.Fatalf("pools %+v notes %s", d.pools, notesText(r))
	}
	p := d.pools[0]
	a := p.Spec.ServiceAllocation
	if p.Name != "prod" || p.Labels["tier"] != "prod" || len(p.Spec.Addresses) != 3 || p.Spec.AutoAssignEnabled() ||
		!p.Spec.AvoidBuggyIPs || a == nil || a.Priority != 10 || a.Namespaces[0] != "web" ||
		a.NamespaceSelectors[0].MatchLabels["team"] != "a" || a.ServiceSelectors[0].MatchExpressions[0].Key != "exposed" {
		t.Errorf("pool: %+v", p)
	}
}

func TestBGPPeerV1beta1(t *testing.T) {
	r, d := convertPath(t, "testdata/crds/bgppeer-v1beta1.yaml")
	if len(d.routers) != 1 || len(d.secrets) != 1 {
		t.Fatalf("routers %+v secrets %+v", d.routers, d.secrets)
	}
	s := d.routers[0].Spec
	if d.routers[0].Name != "tor" || s.MyASN != 64512 || s.PeerASN != 65010 || s.PeerAddress != "198.51.100.3" ||
		s.PeerPort != 179 || s.SourceAddress != "198.51.100.30" || s.HoldTime.Duration.String() != "30s" ||
		s.KeepaliveTime.Duration.String() != "10s" || s.RouterID != "198.51.100.31" || *s.EBGPMultiHop != 255 ||
		s.NodeSelectors[0].MatchLabels["rack"] != "r2" || s.PasswordSecret.Name != "tor-bgp-password" {
		t.Errorf("router: %+v", s)
	}
	if d.secrets[0].Name != "tor-bgp-password" || d.secrets[0].StringData["password"] != "tcp-md5" || d.secrets[0].Namespace != "" {
		t.Errorf("secret: %+v", d.secrets[0])
	}
	wantNotes(t, r, "BGPPeer metallb-system/tor: spec.password: moved to Secret tor-bgp-password")
}

func TestBGPPeerV1beta2(t *testing.T) {
	r, d := convertPath(t, "testdata/crds/bgppeer-v1beta2.yaml")
	if len(d.routers) != 1 || len(d.secrets) != 0 {
		t.Fatalf("routers %+v secrets %+v", d.routers, d.secrets)
	}
	s := d.routers[0].Spec
	if s.ConnectTime.Duration.String() != "5s" || s.PasswordSecret.Name != "spine-pw" || s.PasswordSecret.Namespace != "" ||
		s.PasswordSecret.Key != "password" || s.BFDPolicy != "slow" || !s.GracefulRestart || s.EBGPMultiHop != nil ||
		string(s.NodeSelectors[0].MatchExpressions[0].Operator) != "NotIn" {
		t.Errorf("router: %+v", s)
	}
	wantNotes(t, r,
		"spine: spec.passwordSecret.namespace: not carried: bgplb's speakers read Secrets only in their own namespace; copy Secret metallb-system/spine-pw",
		`spine: spec.vrf: not carried: bgplb has no VRFs`,
		"spine: spec.disableMP: not carried",
		"spine: spec.ebgpMultiHop: not carried: applies only to eBGP",
		`BGPPeer metallb-system/unnumbered: not carried: no peerAddress (spec.interface "eth1")`,
		`spine: spec.bfdPolicy "slow": no such BFDPolicy`)
}

func TestBGPAdvertisementAndCommunity(t *testing.T) {
	// Alone, the alias is unknown; with the Community read too, it resolves.
	r, _ := convertPath(t, "testdata/crds/bgpadvertisement.yaml")
	wantNotes(t, r, `spec.communities[0]: not carried: "no-export-alias" is neither a community nor a known alias`)
	in := &Input{}
	for _, f := range []string{"testdata/crds/bgpadvertisement.yaml", "testdata/crds/community.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Add(f, b); err != nil {
			t.Fatal(err)
		}
	}
	r, d := roundTrip(t, Convert(in))
	if len(d.bgp) != 1 || len(r.Notes) != 0 {
		t.Fatalf("policies %+v notes %s", d.bgp, notesText(r))
	}
	s := d.bgp[0].Spec
	if d.bgp[0].Name != "prod-routes" || *s.AggregationLength != 28 || *s.AggregationLengthV6 != 124 || *s.LocalPref != 200 ||
		strings.Join(s.Communities, ",") != "65535:65281,65000:1" || strings.Join(s.LargeCommunities, ",") != "64512:9:9" ||
		s.IPPools[0] != "prod" || s.IPPoolSelectors[0].MatchLabels["tier"] != "prod" || s.Peers[0] != "tor" ||
		s.NodeSelectors[0].MatchLabels["rack"] != "r2" {
		t.Errorf("policy: %+v", s)
	}
}

func TestL2Advertisement(t *testing.T) {
	r, d := convertPath(t, "testdata/crds/l2advertisement.yaml")
	if len(d.l2) != 1 {
		t.Fatalf("l2: %+v", d.l2)
	}
	s := d.l2[0].Spec
	if s.IPPools[0] != "prod" || s.IPPoolSelectors[0].MatchLabels["tier"] != "office" ||
		s.NodeSelectors[0].MatchLabels["l2"] != "yes" || strings.Join(s.Interfaces, ",") != "eth0" {
		t.Errorf("l2: %+v", s)
	}
	wantNotes(t, r, `spec.interfaces: not carried: "a-name-far-too-long-for-linux"`,
		`spec.interfaces: not carried: "br[0" (item 2) holds a glob character`)
	if n := notesText(r); strings.Contains(n, "not implemented") || strings.Contains(n, "differs from MetalLB") {
		t.Errorf("notes of an L2Advertisement naming its interfaces:\n%s", n)
	}
}

// TestL2AdvertisementOpen: MetalLB answers on every interface when an
// L2Advertisement names none (or none that carries); bgplb on the
// subnet's, and the report says so.
func TestL2AdvertisementOpen(t *testing.T) {
	const subnet = "the interfaces holding an address on the Service address's subnet"
	for _, tc := range []struct{ name, interfaces, note string }{
		{"none named", "", "spec.interfaces: empty, which differs from MetalLB"},
		// Listed, then dropped: the field was not empty, and the note
		// must not call it so.
		{"none carried", "  interfaces: [a-name-far-too-long-for-linux, \"eth*\"]\n",
			"spec.interfaces: every listed interface was dropped (see above), so bgplb's default applies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: all\n  namespace: metallb-system\nspec:\n" +
				"  ipAddressPools: [lan]\n" + tc.interfaces
			in := &Input{}
			if err := in.Add("in.yaml", []byte(doc)); err != nil {
				t.Fatal(err)
			}
			r, d := roundTrip(t, Convert(in))
			if len(d.l2) != 1 || len(d.l2[0].Spec.Interfaces) != 0 {
				t.Fatalf("l2: %+v", d.l2)
			}
			wantNotes(t, r, "L2Advertisement metallb-system/all: "+tc.note, subnet)
			if tc.interfaces != "" && strings.Contains(notesText(r), "empty") {
				t.Errorf("a listed field is called empty:\n%s", notesText(r))
			}
		})
	}
}

func TestBFDProfile(t *testing.T) {
	r, d := convertPath(t, "testdata/crds/bfdprofile.yaml")
	if len(d.bfd) != 1 {
		t.Fatalf("bfd: %+v", d.bfd)
	}
	s := d.bfd[0].Spec
	if *s.ReceiveInterval != 1000 || *s.TransmitInterval != 1000 || *s.DetectMultiplier != 4 || s.EchoMode || !s.PassiveMode {
		t.Errorf("bfd: %+v", s)
	}
	wantNotes(t, r, "BFDProfile metallb-system/slow: spec.minimumTtl: not carried")
	if strings.Contains(notesText(r), "BFDPolicy slow") {
		t.Errorf("a BFDPolicy without echo mode is noted:\n%s", notesText(r))
	}
}
