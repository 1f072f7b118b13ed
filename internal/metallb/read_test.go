package metallb

import (
	"os"
	"strings"
	"testing"
)

func TestReadDir(t *testing.T) {
	r, d := convertPath(t, "testdata/crds")
	if len(d.pools) != 1 || len(d.routers) != 2 || len(d.bgp) != 1 || len(d.l2) != 1 || len(d.bfd) != 1 || len(d.secrets) != 1 {
		t.Fatalf("counts: pools %d routers %d bgp %d l2 %d bfd %d secrets %d",
			len(d.pools), len(d.routers), len(d.bgp), len(d.l2), len(d.bfd), len(d.secrets))
	}
	// The Community is in another file of the directory than the
	// advertisement that names its alias.
	if strings.Contains(notesText(r), "no-export-alias") {
		t.Errorf("alias not resolved across files:\n%s", notesText(r))
	}
	if _, err := ReadPath(t.TempDir(), nil); err == nil {
		t.Error("an empty directory was accepted")
	}
}

func TestReadStdin(t *testing.T) {
	b, err := os.ReadFile("testdata/seed-configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := ReadPath("-", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	_, d := roundTrip(t, Convert(in))
	if len(d.pools) != 1 || len(d.routers) != 1 || len(d.bgp) != 1 {
		t.Errorf("from stdin: %+v", d)
	}
}

// A bare config (the ConfigMap's "config" key alone), a kubectl List, and
// documents that are not MetalLB's all read as one would expect.
func TestReadShapes(t *testing.T) {
	const src = `
peers:
- {peer-address: 198.51.100.1, peer-asn: 64512, my-asn: 64512, surprise: 1}
address-pools:
- {name: a, protocol: bgp, addresses: [203.0.113.0/28]}
---
apiVersion: v1
kind: List
items:
- apiVersion: metallb.io/v1beta1
  kind: IPAddressPool
  metadata: {name: b, namespace: metallb-system}
  spec: {addresses: [203.0.113.16/28]}
- apiVersion: metallb.io/v1beta1
  kind: IPAddressPool
  metadata: {name: a, namespace: other}
  spec: {addresses: [203.0.113.32/28]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: controller}
---
apiVersion: metallb.io/v1beta1
kind: ServiceL2Status
metadata: {name: x}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
data: {x: y}
`
	in := &Input{}
	if err := in.Add("in.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
	r, d := roundTrip(t, Convert(in))
	var names []string
	for _, p := range d.pools {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "a,b,a-other" || len(d.routers) != 1 {
		t.Errorf("pools %v routers %d", names, len(d.routers))
	}
	wantNotes(t, r,
		`in.yaml#1 ConfigMap: unknown field(s) not carried: error unmarshaling JSON: while decoding JSON: json: unknown field "surprise"`,
		"IPAddressPool other/a: metadata.name: renamed a-other",
		"in.yaml#3 Deployment: skipped: not a MetalLB object (apps/v1)",
		"in.yaml#4 ServiceL2Status: skipped: bgplb has no counterpart",
		`in.yaml#5 ConfigMap: skipped: no "config" key`)
	if err := (&Input{}).Add("bad.yaml", []byte("peers: [")); err == nil {
		t.Error("broken YAML accepted")
	}
}
