package v1alpha1

// The CRDs' schemas and CEL rules, checked in-process with the same
// apiextensions code the API server runs: a CRD the server would refuse
// (a rule that does not compile or is over the cost budget) fails here, and
// objects are validated as the server would validate them. The integration
// test repeats the important cases against a real API server.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// crdDir is where `make generate` writes the CRDs, from this package.
const crdDir = "../../config/crd/bases"

// kinds are the CRDs this package must generate, by file name.
var kinds = map[string]string{
	"LoadBalancerPool":      "bgplb.io_loadbalancerpools.yaml",
	"BGPRouter":             "bgplb.io_bgprouters.yaml",
	"BGPAnnouncementPolicy": "bgplb.io_bgpannouncementpolicies.yaml",
	"L2AnnouncementPolicy":  "bgplb.io_l2announcementpolicies.yaml",
	"BFDPolicy":             "bgplb.io_bfdpolicies.yaml",
}

// loadCRD reads a generated CRD and converts it to the internal form the
// API server validates.
func loadCRD(t testing.TB, kind string) *apiextensions.CustomResourceDefinition {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(crdDir, kinds[kind]))
	if err != nil {
		t.Fatalf("CRD for %s: %v", kind, err)
	}
	var v1 apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &v1); err != nil {
		t.Fatalf("CRD for %s: %v", kind, err)
	}
	var crd apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1, &crd, nil); err != nil {
		t.Fatalf("CRD for %s: %v", kind, err)
	}
	return &crd
}

// objectValidator checks objects of one kind as the API server does on
// create: defaults, then the OpenAPI schema and list types, then the CEL
// rules.
type objectValidator struct {
	structural *structuralschema.Structural
	schema     validation.SchemaValidator
	cel        *cel.Validator
}

func newObjectValidator(t testing.TB, kind string) *objectValidator {
	t.Helper()
	crd := loadCRD(t, kind)
	// With one version, the internal form keeps its schema at the top.
	if len(crd.Spec.Versions) != 1 || crd.Spec.Validation == nil {
		t.Fatalf("CRD for %s: want one version with a schema", kind)
	}
	props := crd.Spec.Validation.OpenAPIV3Schema
	s, err := structuralschema.NewStructural(props)
	if err != nil {
		t.Fatalf("CRD for %s: not structural: %v", kind, err)
	}
	sv, _, err := validation.NewSchemaValidator(props)
	if err != nil {
		t.Fatalf("CRD for %s: %v", kind, err)
	}
	return &objectValidator{structural: s, schema: sv, cel: cel.NewValidator(s, true, celconfig.PerCallLimit)}
}

// validate returns the API server's complaints about a YAML object.
func (v *objectValidator) validate(t testing.TB, doc string) field.ErrorList {
	t.Helper()
	// Decoded as the API server decodes a body: integers stay int64.
	raw, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("test object: %v\n%s", err, doc)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("test object: %v\n%s", err, doc)
	}
	defaulting.Default(obj, v.structural)
	errs := validation.ValidateCustomResource(nil, obj, v.schema)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, v.structural, obj)...)
	if len(errs) > 0 {
		return errs
	}
	celErrs, _ := v.cel.Validate(context.Background(), nil, v.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return celErrs
}

func TestCRDsAreValid(t *testing.T) {
	for kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			crd := loadCRD(t, kind)
			if crd.Spec.Names.Kind != kind || crd.Spec.Group != Group || crd.Spec.Scope != apiextensions.ClusterScoped {
				t.Errorf("got kind %q group %q scope %q", crd.Spec.Names.Kind, crd.Spec.Group, crd.Spec.Scope)
			}
			// What kube-apiserver runs on create: compiles every CEL rule
			// and refuses rules over the cost budget. It sets
			// storedVersions itself before validating.
			crd.Status.StoredVersions = []string{GroupVersion.Version}
			if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), crd); len(errs) > 0 {
				t.Fatalf("the API server would refuse the CRD:\n%v", errs.ToAggregate())
			}
		})
	}
}

// TestCRDsCarryTheirRules proves the generated YAML holds each rule the
// markers declare, by message: a marker typo that controller-gen drops
// silently fails here.
func TestCRDsCarryTheirRules(t *testing.T) {
	want := map[string][]string{
		"LoadBalancerPool": {
			"must be a CIDR (203.0.113.0/24), a range",
			"a CIDR must have no bits set after its prefix length",
			"both ends of a range must be of the same family",
			"the start of a range must not come after its end",
		},
		"BGPRouter": {
			"keepaliveTime must not exceed holdTime",
			"sourceAddress must be of the same family as peerAddress",
			"ebgpMultiHop applies only to eBGP sessions",
			"holdTime must be 0 or between 3s and 65535s",
			"connectTime must be between 1s and 65535s",
			"must be an IPv4 or IPv6 address without a zone",
		},
		"BGPAnnouncementPolicy": {
			"must be AS:value with both numbers at most 65535",
			"must be three numbers at most 4294967295 joined by colons",
		},
		"L2AnnouncementPolicy": {"must be an interface name"},
		"BFDPolicy":            nil,
	}
	for kind, msgs := range want {
		crd := loadCRD(t, kind)
		var got []string
		collectRuleMessages(crd.Spec.Validation.OpenAPIV3Schema, &got)
		if len(got) < len(msgs) {
			t.Errorf("%s: %d rules in the CRD, want at least %d", kind, len(got), len(msgs))
		}
		for _, m := range msgs {
			found := false
			for _, g := range got {
				found = found || strings.Contains(g, m)
			}
			if !found {
				t.Errorf("%s: no rule with message %q in the CRD (have %q)", kind, m, got)
			}
		}
	}
}

func collectRuleMessages(s *apiextensions.JSONSchemaProps, out *[]string) {
	if s == nil {
		return
	}
	for _, r := range s.XValidations {
		*out = append(*out, r.Message)
	}
	for _, p := range s.Properties {
		collectRuleMessages(&p, out)
	}
	if s.Items != nil {
		collectRuleMessages(s.Items.Schema, out)
	}
}
