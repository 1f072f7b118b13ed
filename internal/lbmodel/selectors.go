package lbmodel

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Selectors converts a list of label selectors with apimachinery's rules
// (metav1.LabelSelectorAsSelector: operators are case-sensitive, In and
// NotIn need values, Exists and DoesNotExist take none, keys and values are
// checked as labels). The API server does not check a CRD's selectors, so
// a bad one reaches us: it is an error naming path and index, never a
// selector that silently matches nothing or everything.
func Selectors(path string, ls []metav1.LabelSelector) ([]labels.Selector, error) {
	if len(ls) == 0 {
		return nil, nil
	}
	out := make([]labels.Selector, 0, len(ls))
	for i := range ls {
		s, err := metav1.LabelSelectorAsSelector(&ls[i])
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", path, i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// MatchesAny is the rule of every selector list in bgplb (peers' and
// advertisements' nodeSelectors, ipPoolSelectors): an empty list selects
// everything, otherwise any selector must match. A nil selector matches
// nothing, failing closed, so that a selector that could not be converted
// never opens an advertisement to every node.
func MatchesAny(sels []labels.Selector, set labels.Set) bool {
	if len(sels) == 0 {
		return true
	}
	for _, s := range sels {
		if s != nil && s.Matches(set) {
			return true
		}
	}
	return false
}
