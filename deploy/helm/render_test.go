package helm

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bgplb/bgplb/internal/podspec"
)

var update = flag.Bool("update", false, "rewrite the chart's copies of config/ and deploy/examples")

const (
	chartDir = "bgplb"
	// releaseName is the docs' `helm install bgplb ...`: the objects then
	// have deploy/manifests' names.
	releaseName = "bgplb"
	defaultNS   = "bgplb-system"
)

// rendered is a release as `helm template` makes it: the objects (without
// crds/, which Helm installs apart), their workloads by role, and NOTES.txt.
type rendered struct {
	objs      []*unstructured.Unstructured
	workloads map[string]podspec.Workload
	notes     string
}

// render runs a client-only install (what `helm template` does) of the
// chart into namespace ns with vals over values.yaml.
func render(t *testing.T, ns string, vals map[string]any) rendered {
	t.Helper()
	return renderChart(t, chartDir, ns, vals)
}

// renderChart renders the chart at path, a directory or a packaged .tgz.
func renderChart(t *testing.T, path, ns string, vals map[string]any) rendered {
	t.Helper()
	rel, err := renderErr(path, ns, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs, err := podspec.Decode([]byte(rel.Manifest))
	if err != nil {
		t.Fatalf("rendered manifest: %v\n%s", err, rel.Manifest)
	}
	w, err := podspec.Workloads(objs)
	if err != nil {
		t.Fatal(err)
	}
	return rendered{objs: objs, workloads: w, notes: rel.Info.Notes}
}

func renderErr(path, ns string, vals map[string]any) (*release.Release, error) {
	ch, err := loader.Load(path)
	if err != nil {
		return nil, err
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(io.Discard, nil)))
	in := action.NewInstall(cfg)
	in.DryRunStrategy = action.DryRunClient
	in.ReleaseName = releaseName
	in.Namespace = ns
	r, err := in.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	rel, ok := r.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("release of type %T", r)
	}
	return rel, nil
}

func (r rendered) byKey() map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, o := range r.objs {
		m[podspec.Key(o)] = o
	}
	return m
}

func chartMetadata(t *testing.T) *chartv2.Metadata {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch.(*chartv2.Chart).Metadata
}
