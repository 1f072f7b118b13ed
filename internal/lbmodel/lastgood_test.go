package lbmodel

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// adv is a BGPAnnouncementPolicy whose node selector says zone=zone (or, with
// lower, uses the operator `in` in lower case, which the API server lets
// through and apimachinery refuses).
func adv(name string, uid types.UID, gen int64, zone string, lower bool) v1alpha1.BGPAnnouncementPolicy {
	op := metav1.LabelSelectorOpIn
	if lower {
		op = "in"
	}
	return v1alpha1.BGPAnnouncementPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: uid, Generation: gen},
		Spec:       v1alpha1.BGPAnnouncementPolicySpec{NodeSelectors: []metav1.LabelSelector{expr("zone", op, zone)}},
	}
}

// One object through a sequence of versions: what is in force after each.
func TestLastGood(t *testing.T) {
	type step struct {
		what  string
		items []v1alpha1.BGPAnnouncementPolicy
		// want per item: "" not in force, else the zone in force; err: a
		// substring of the error, "" for none.
		want, err []string
		parses    int // parse calls the step makes
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{{
		name: "a bad edit keeps the last good version until fixed",
		steps: []step{
			{"valid", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 1, "a", false)}, []string{"a"}, []string{""}, 1},
			{"the same generation is not parsed again", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 1, "a", false)}, []string{"a"}, []string{""}, 0},
			{"edited with `in` in lower case", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 2, "b", true)}, []string{"a"}, []string{`"in" is not a valid`}, 1},
			{"the bad generation again: same verdict, no parse", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 2, "b", true)}, []string{"a"}, []string{`"in" is not a valid`}, 0},
			{"fixed", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 3, "c", false)}, []string{"c"}, []string{""}, 1},
		},
	}, {
		name: "never valid: not in force",
		steps: []step{
			{"bad from the start", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 1, "a", true)}, []string{""}, []string{"not a valid"}, 1},
			{"fixed", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 2, "a", false)}, []string{"a"}, []string{""}, 1},
		},
	}, {
		name: "deleted and created again under the same name: nothing inherited",
		steps: []step{
			{"valid", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 1, "a", false)}, []string{"a"}, []string{""}, 1},
			{"a new object, bad", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u2", 1, "b", true)}, []string{""}, []string{"not a valid"}, 1},
			{"the old UID back is forgotten too", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 2, "b", true)}, []string{""}, []string{"not a valid"}, 1},
		},
	}, {
		name: "objects are independent; a deleted one is forgotten",
		steps: []step{
			{"two valid", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 1, "a", false), adv("b", "u2", 1, "b", false)}, []string{"a", "b"}, []string{"", ""}, 2},
			{"a broken, b gone", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 2, "x", true)}, []string{"a"}, []string{"not a valid"}, 1},
			{"b back, broken", []v1alpha1.BGPAnnouncementPolicy{adv("a", "u1", 2, "x", true), adv("b", "u2", 2, "x", true)}, []string{"a", ""}, []string{"not a valid", "not a valid"}, 1},
		},
	}, {
		name: "generation 0 (built by hand) is parsed every time, keyed by name",
		steps: []step{
			{"valid", []v1alpha1.BGPAnnouncementPolicy{adv("a", "", 0, "a", false)}, []string{"a"}, []string{""}, 1},
			{"bad", []v1alpha1.BGPAnnouncementPolicy{adv("a", "", 0, "b", true)}, []string{"a"}, []string{"not a valid"}, 1},
			{"bad again", []v1alpha1.BGPAnnouncementPolicy{adv("a", "", 0, "b", true)}, []string{"a"}, []string{"not a valid"}, 1},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var lg LastGood[Advertisement]
			for _, st := range tc.steps {
				parses := 0
				got := ResolveAll(&lg, st.items, func(a *v1alpha1.BGPAnnouncementPolicy) (Advertisement, error) {
					parses++
					return AdvertisementFrom(a)
				})
				if parses != st.parses {
					t.Errorf("%s: %d parses, want %d", st.what, parses, st.parses)
				}
				for i, r := range got {
					zone := ""
					if r.OK {
						zone = zoneOf(t, r.Value)
					}
					if zone != st.want[i] {
						t.Errorf("%s: item %d: zone %q in force, want %q", st.what, i, zone, st.want[i])
					}
					if e := st.err[i]; e == "" && r.Err != nil || e != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), e)) {
						t.Errorf("%s: item %d: error %v, want one containing %q", st.what, i, r.Err, e)
					}
				}
			}
		})
	}
}

// zoneOf is the zone an advertisement's one node selector selects.
func zoneOf(t *testing.T, a Advertisement) string {
	t.Helper()
	for _, z := range []string{"a", "b", "c", "x"} {
		if a.SelectsNode(map[string]string{"zone": z}) {
			return z
		}
	}
	t.Fatalf("advertisement %s selects no zone", a.Name)
	return ""
}

func TestLastGoodGeneration(t *testing.T) {
	var lg LastGood[Peer]
	p := v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: "r", UID: "u", Generation: 4}, Spec: v1alpha1.BGPRouterSpec{PeerAddress: "198.51.100.1"}}
	ResolveAll(&lg, []v1alpha1.BGPRouter{p}, PeerFrom)
	p.Generation, p.Spec.PeerAddress = 5, "router.lan"
	r := ResolveAll(&lg, []v1alpha1.BGPRouter{p}, PeerFrom)[0]
	if !r.OK || r.Generation != 4 || r.Value.Address != ip("198.51.100.1") || r.Value.Generation != 4 ||
		r.Err == nil || !strings.Contains(r.Err.Error(), "spec.peerAddress") {
		t.Errorf("resolved %+v", r)
	}
}
