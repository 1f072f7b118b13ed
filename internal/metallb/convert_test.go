package metallb

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// decoded is the output read back into bgplb's types.
type decoded struct {
	pools    []v1alpha1.LoadBalancerPool
	routers  []v1alpha1.BGPRouter
	bgp      []v1alpha1.BGPAnnouncementPolicy
	l2       []v1alpha1.L2AnnouncementPolicy
	bfd      []v1alpha1.BFDPolicy
	secrets  []corev1.Secret
	comments string
}

func convertPath(t *testing.T, path string) (*Result, decoded) {
	t.Helper()
	in, err := ReadPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, Convert(in))
}

// roundTrip writes the result, decodes every document strictly into the
// Go type its kind names, and runs the model's checks, as the controller
// and speakers would on the applied objects.
func roundTrip(t *testing.T, r *Result) (*Result, decoded) {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	var d decoded
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(buf.Bytes())))
	for {
		doc, err := rd.Read()
		if err != nil {
			break
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatal(err)
		}
		switch head.Kind {
		case "":
			d.comments += string(doc)
		case "LoadBalancerPool":
			d.pools = append(d.pools, strict[v1alpha1.LoadBalancerPool](t, doc))
		case "BGPRouter":
			d.routers = append(d.routers, strict[v1alpha1.BGPRouter](t, doc))
		case "BGPAnnouncementPolicy":
			d.bgp = append(d.bgp, strict[v1alpha1.BGPAnnouncementPolicy](t, doc))
		case "L2AnnouncementPolicy":
			d.l2 = append(d.l2, strict[v1alpha1.L2AnnouncementPolicy](t, doc))
		case "BFDPolicy":
			d.bfd = append(d.bfd, strict[v1alpha1.BFDPolicy](t, doc))
		case "Secret":
			d.secrets = append(d.secrets, strict[corev1.Secret](t, doc))
		default:
			t.Fatalf("unexpected kind %q in\n%s", head.Kind, buf.String())
		}
		if head.Kind != "" && head.Kind != "Secret" && head.APIVersion != "bgplb.io/v1alpha1" {
			t.Errorf("%s has apiVersion %q", head.Kind, head.APIVersion)
		}
	}
	if _, problems := lbmodel.PoolsFrom(d.pools); len(problems) > 0 {
		t.Errorf("pools refused by the model: %v", problems)
	}
	for i := range d.routers {
		if _, err := lbmodel.PeerFrom(&d.routers[i]); err != nil {
			t.Errorf("router %s refused: %v", d.routers[i].Name, err)
		}
	}
	for i := range d.bgp {
		if _, err := lbmodel.AdvertisementFrom(&d.bgp[i]); err != nil {
			t.Errorf("policy %s refused: %v", d.bgp[i].Name, err)
		}
	}
	for i := range d.l2 {
		if _, err := lbmodel.L2AdvertisementFrom(&d.l2[i]); err != nil {
			t.Errorf("l2 policy %s refused: %v", d.l2[i].Name, err)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", buf.String())
	}
	return r, d
}

func strict[T any](t *testing.T, doc []byte) T {
	t.Helper()
	var v T
	if err := yaml.UnmarshalStrict(doc, &v); err != nil {
		t.Fatalf("strict decoding: %v\n%s", err, doc)
	}
	return v
}

func notesText(r *Result) string {
	var b strings.Builder
	for _, n := range r.Notes {
		b.WriteString(n.String() + "\n")
	}
	return b.String()
}

func wantNotes(t *testing.T, r *Result, subs ...string) {
	t.Helper()
	got := notesText(r)
	for _, s := range subs {
		if !strings.Contains(got, s) {
			t.Errorf("report lacks %q; it is:\n%s", s, got)
		}
	}
}

func TestSeedConfigMap(t *testing.T) {
	r, d := convertPath(t, "testdata/seed-configmap.yaml")
	if len(d.pools) != 1 || d.pools[0].Name != "bgptest" || strings.Join(d.pools[0].Spec.Addresses, ",") != "203.0.113.0/24" {
		t.Errorf("pools: %+v", d.pools)
	}
	if len(d.routers) != 1 {
		t.Fatalf("routers: %+v", d.routers)
	}
	s := d.routers[0].Spec
	if d.routers[0].Name != "peer-198-51-100-1" || s.PeerAddress != "198.51.100.1" || s.MyASN != 64512 || s.PeerASN != 64512 {
		t.Errorf("router: %s %+v", d.routers[0].Name, s)
	}
	if len(d.bgp) != 1 || d.bgp[0].Name != "bgptest" || strings.Join(d.bgp[0].Spec.IPPools, ",") != "bgptest" ||
		len(d.bgp[0].Spec.Peers) != 0 || d.bgp[0].Spec.AggregationLength != nil {
		t.Errorf("announcement policies: %+v", d.bgp)
	}
	if len(d.l2)+len(d.bfd)+len(d.secrets) != 0 || len(r.Notes) != 0 {
		t.Errorf("unexpected extras: %+v %+v %+v, notes:\n%s", d.l2, d.bfd, d.secrets, notesText(r))
	}
	if !strings.Contains(d.comments, "Every field was carried") {
		t.Errorf("comments: %q", d.comments)
	}
}
