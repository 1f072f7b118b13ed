package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// TestCRDReference: configuration.md documents every field of every bgplb
// kind, with its type, default and description, as the generated CRDs in
// config/crd/bases (from the Go API types) say. `go test ./docs -update`
// rewrites it.
func TestCRDReference(t *testing.T) {
	files, err := filepath.Glob("../config/crd/bases/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs: %v", err)
	}
	var crds []apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(b, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		crds = append(crds, crd)
	}
	slices.SortFunc(crds, func(a, b apiextensionsv1.CustomResourceDefinition) int {
		return strings.Compare(a.Spec.Names.Kind, b.Spec.Names.Kind)
	})
	want := renderCRDs(crds)
	if *update {
		if err := os.WriteFile("configuration.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("configuration.md differs from config/crd/bases; run go test ./docs -update and review the diff")
	}
}

func renderCRDs(crds []apiextensionsv1.CustomResourceDefinition) string {
	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Every field of every bgplb kind (group `bgplb.io`, version `v1alpha1`), generated from the CRDs in\n")
	b.WriteString("`config/crd/bases` (which controller-gen writes from the Go types in `api/v1alpha1`) by\n")
	b.WriteString("`go test ./docs -update`; the test fails when this file and the CRDs disagree. `kubectl get bgplb`\n")
	b.WriteString("lists every object of these kinds.\n\n")
	for _, crd := range crds {
		n := crd.Spec.Names
		fmt.Fprintf(&b, "- [%s](#%s)\n", n.Kind, strings.ToLower(n.Kind))
	}
	for _, crd := range crds {
		n := crd.Spec.Names
		fmt.Fprintf(&b, "\n## %s\n\n", n.Kind)
		scope := "cluster-wide"
		if crd.Spec.Scope == apiextensionsv1.NamespaceScoped {
			scope = "namespaced"
		}
		short := ""
		if len(n.ShortNames) > 0 {
			short = ", short name `" + strings.Join(n.ShortNames, "`, `") + "`"
		}
		fmt.Fprintf(&b, "`kubectl get %s`%s; %s.\n\n", n.Plural, short, scope)
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			s := v.Schema.OpenAPIV3Schema
			b.WriteString(oneLine(s.Description) + "\n\n")
			b.WriteString("| field | type | default | description |\n| --- | --- | --- | --- |\n")
			for _, top := range []string{"spec", "status"} {
				if p, ok := s.Properties[top]; ok {
					fields(&b, top, p, slices.Contains(s.Required, top))
				}
			}
		}
	}
	return b.String()
}

// fields writes one row per field under path, depth first, in name order.
func fields(b *strings.Builder, path string, s apiextensionsv1.JSONSchemaProps, required bool) {
	typ := s.Type
	if typ == "array" && s.Items != nil && s.Items.Schema != nil {
		typ = "[]" + s.Items.Schema.Type
	}
	if s.XIntOrString {
		typ = "int or string"
	}
	if required {
		typ += ", required"
	}
	def := ""
	if s.Default != nil {
		def = "`" + string(s.Default.Raw) + "`"
	}
	fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", path, typ, def, strings.ReplaceAll(oneLine(s.Description), "|", "\\|"))
	props := s.Properties
	req := s.Required
	if s.Items != nil && s.Items.Schema != nil {
		props, req = s.Items.Schema.Properties, s.Items.Schema.Required
		path += "[]"
	}
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fields(b, path+"."+k, props[k], slices.Contains(req, k))
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
