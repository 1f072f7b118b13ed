package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs applies every CustomResourceDefinition found in the .yaml,
// .yml and .json files of dir (not its subdirectories), and waits until each
// is Established and its served versions appear in discovery: only then can
// a client that maps kinds through discovery (controller-runtime's) use
// them. It applies server-side, so installing again updates the
// definitions. A directory without any definition is an error, so that a
// wrong path cannot pass unnoticed.
func (s *Server) InstallCRDs(ctx context.Context, dir string) error {
	crds, err := readCRDDir(dir)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(s.Config)
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	api := dyn.Resource(crdResource)
	for _, c := range crds {
		_, err := api.Apply(ctx, c.GetName(), c, metav1.ApplyOptions{FieldManager: "bgplb-controlplane", Force: true})
		if err != nil {
			return fmt.Errorf("controlplane: apply CRD %s: %w", c.GetName(), err)
		}
	}
	for _, c := range crds {
		if err := s.waitCRD(ctx, api, c); err != nil {
			return err
		}
	}
	return warmCRDs(ctx, dyn, crds)
}

// warmCRDs makes one dry-run create per served version, all at once. The
// server readies a custom resource's write path on its first write, which
// takes two seconds here; paying it now, in parallel, keeps the caller's
// first write (and its timeout) as fast as any other. The object is
// minimal: a validation error still does the work and writes nothing.
func warmCRDs(ctx context.Context, dyn dynamic.Interface, crds []*unstructured.Unstructured) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, c := range crds {
		group, _, _ := unstructured.NestedString(c.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(c.Object, "spec", "names", "plural")
		kind, _, _ := unstructured.NestedString(c.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(c.Object, "spec", "scope")
		for _, v := range servedVersions(c) {
			gvr := schema.GroupVersionResource{Group: group, Version: v, Resource: plural}
			var api dynamic.ResourceInterface = dyn.Resource(gvr)
			if scope == "Namespaced" {
				api = dyn.Resource(gvr).Namespace(metav1.NamespaceDefault)
			}
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": gvr.GroupVersion().String(),
				"kind":       kind,
				"metadata":   map[string]any{"generateName": "bgplb-warm-"},
			}}
			wg.Go(func() {
				_, err := api.Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				if err != nil && !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("controlplane: dry-run create of %s: %w", gvr, err))
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Server) waitCRD(ctx context.Context, api dynamic.ResourceInterface, c *unstructured.Unstructured) error {
	name := c.GetName()
	err := s.Poll(ctx, "CRD "+name+" Established", func(ctx context.Context) error {
		got, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		established, refused := crdConditions(got)
		if refused != "" {
			// A name clash will not resolve by waiting.
			return permanent{fmt.Errorf("controlplane: CRD %s: %s", name, refused)}
		}
		if !established {
			return errors.New("not yet Established")
		}
		return nil
	})
	if err != nil {
		return err
	}
	group, _, _ := unstructured.NestedString(c.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(c.Object, "spec", "names", "plural")
	for _, v := range servedVersions(c) {
		gv := group + "/" + v
		err := s.Poll(ctx, "discovery of "+plural+"."+gv, func(context.Context) error {
			list, err := s.Client.Discovery().ServerResourcesForGroupVersion(gv)
			if err != nil {
				return err
			}
			for _, r := range list.APIResources {
				if r.Name == plural {
					return nil
				}
			}
			return fmt.Errorf("%s not listed yet", plural)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// permanent marks a poll error that waiting cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// crdConditions reads a CRD's status: whether it is Established, and why
// the server refused its names, if it did.
func crdConditions(crd *unstructured.Unstructured) (established bool, refused string) {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		switch m["type"] {
		case "Established":
			established = m["status"] == "True"
		case "NamesAccepted":
			if m["status"] == "False" {
				refused = fmt.Sprintf("names not accepted: %v: %v", m["reason"], m["message"])
			}
		}
	}
	return established, refused
}

func servedVersions(crd *unstructured.Unstructured) []string {
	vs, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var out []string
	for _, v := range vs {
		m, ok := v.(map[string]any)
		if ok && m["served"] == true {
			if name, ok := m["name"].(string); ok {
				out = append(out, name)
			}
		}
	}
	return out
}

// readCRDDir decodes the definitions in dir's manifest files, in name order.
func readCRDDir(dir string) ([]*unstructured.Unstructured, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("controlplane: CRD directory: %w", err)
	}
	var out []*unstructured.Unstructured
	for _, ent := range entries {
		ext := strings.ToLower(filepath.Ext(ent.Name()))
		if ent.IsDir() || !slices.Contains([]string{".yaml", ".yml", ".json"}, ext) {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
		crds, err := decodeCRDs(path, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		out = append(out, crds...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("controlplane: no CustomResourceDefinition in %s", dir)
	}
	return out, nil
}

// decodeCRDs reads the YAML (or JSON) documents of one file. Every
// non-empty document must be an apiextensions.k8s.io/v1
// CustomResourceDefinition with a name: anything else in a CRD directory
// is a mistake worth stopping for.
func decodeCRDs(name string, r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("controlplane: %s: document %d: %w", name, doc, err)
		}
		if len(obj) == 0 {
			continue // an empty document between two "---"
		}
		u := &unstructured.Unstructured{Object: obj}
		if gvk := u.GroupVersionKind(); gvk != crdResource.GroupVersion().WithKind("CustomResourceDefinition") {
			return nil, fmt.Errorf("controlplane: %s: document %d is %s %q, not an apiextensions.k8s.io/v1 CustomResourceDefinition", name, doc, gvk, u.GetName())
		}
		if u.GetName() == "" {
			return nil, fmt.Errorf("controlplane: %s: document %d: CustomResourceDefinition without metadata.name", name, doc)
		}
		out = append(out, u)
	}
}
