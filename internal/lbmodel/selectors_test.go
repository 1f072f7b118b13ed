package lbmodel

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestSelectors(t *testing.T) {
	node := labels.Set{"app": "web", "tier": "edge"}
	for _, tc := range []struct {
		name    string
		sel     metav1.LabelSelector
		match   bool
		wantErr string
	}{
		{name: "empty matches all", sel: metav1.LabelSelector{}, match: true},
		{name: "matchLabels", sel: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, match: true},
		{name: "matchLabels differs", sel: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
		{name: "matchLabels missing", sel: metav1.LabelSelector{MatchLabels: map[string]string{"team": ""}}},
		{name: "In", sel: expr("app", metav1.LabelSelectorOpIn, "db", "web"), match: true},
		{name: "In, key missing", sel: expr("x", metav1.LabelSelectorOpIn, "a")},
		{name: "NotIn", sel: expr("app", metav1.LabelSelectorOpNotIn, "web")},
		{name: "NotIn, key missing", sel: expr("x", metav1.LabelSelectorOpNotIn, "a"), match: true},
		{name: "Exists", sel: expr("tier", metav1.LabelSelectorOpExists), match: true},
		{name: "DoesNotExist", sel: expr("tier", metav1.LabelSelectorOpDoesNotExist)},
		{name: "all must hold", sel: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
			MatchExpressions: expr("tier", metav1.LabelSelectorOpDoesNotExist).MatchExpressions}},

		// The API server does not check a custom resource's selectors.
		{name: "operator in lower case", sel: expr("app", "in", "web"), wantErr: `x[0]: "in" is not a valid label selector operator`},
		{name: "unknown operator", sel: expr("app", "Like", "web"), wantErr: `"Like" is not a valid label selector operator`},
		{name: "In without values", sel: expr("app", metav1.LabelSelectorOpIn), wantErr: "for 'in', 'notin' operators, values set can't be empty"},
		{name: "Exists with values", sel: expr("app", metav1.LabelSelectorOpExists, "x"), wantErr: "values set must be empty for exists and does not exist"},
		{name: "bad key", sel: expr("a b", metav1.LabelSelectorOpExists), wantErr: "name part must consist of"},
		{name: "bad matchLabels value", sel: metav1.LabelSelector{MatchLabels: map[string]string{"app": "no spaces"}}, wantErr: "a valid label must be"},
	} {
		sels, err := Selectors("x", []metav1.LabelSelector{tc.sel})
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || sels != nil {
				t.Errorf("%s: %v, %v; want only an error containing %q", tc.name, sels, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case MatchesAny(sels, node) != tc.match:
			t.Errorf("%s: matches %v, want %v", tc.name, !tc.match, tc.match)
		}
	}
}

func TestSelectorsNameTheBadOne(t *testing.T) {
	_, err := Selectors("spec.nodeSelectors", []metav1.LabelSelector{{}, expr("zone", "in", "a")})
	if err == nil || !strings.HasPrefix(err.Error(), "spec.nodeSelectors[1]: ") {
		t.Errorf("error %v does not name spec.nodeSelectors[1]", err)
	}
	if sels, err := Selectors("x", nil); sels != nil || err != nil {
		t.Errorf("no selectors: %v, %v", sels, err)
	}
}

func TestMatchesAny(t *testing.T) {
	set := labels.Set{"zone": "a"}
	for _, tc := range []struct {
		name string
		sels []labels.Selector
		want bool
	}{
		{"none: everything", nil, true},
		{"one that matches", []labels.Selector{sel("zone=a")}, true},
		{"any of several", []labels.Selector{sel("zone=b"), sel("zone in (a,c)")}, true},
		{"none of several", []labels.Selector{sel("zone=b"), sel("rack")}, false},
		{"a nil selector fails closed", []labels.Selector{nil}, false},
		{"labels.Nothing", []labels.Selector{labels.Nothing()}, false},
	} {
		if got := MatchesAny(tc.sels, set); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
