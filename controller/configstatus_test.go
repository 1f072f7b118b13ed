package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

func TestConfigConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	bad := errors.New(`spec.nodeSelectors[0]: "in" is not a valid label selector operator`)
	steps := []struct {
		name       string
		v          configVerdict
		changed    bool
		accepted   metav1.ConditionStatus
		msg        string // in Accepted's message
		supported  string // Supported's message; "" for none
		transition metav1.Time
	}{
		{"valid", configVerdict{generation: 1}, true, metav1.ConditionTrue, "in force", "", t0},
		{"again: nothing to write", configVerdict{generation: 1}, false, metav1.ConditionTrue, "in force", "", t0},
		{"unsupported settings", configVerdict{generation: 2, unsupported: []string{"a is ignored", "b is ignored"}}, true,
			metav1.ConditionTrue, "in force", "a is ignored; b is ignored", t0},
		{"bad edit, last good in force", configVerdict{generation: 3, err: bad, inForce: 2, unsupported: []string{"a is ignored"}}, true,
			metav1.ConditionFalse, `"in" is not a valid label selector operator; generation 2, the last valid one, stays in force`, "a is ignored", t1},
		{"never valid", configVerdict{generation: 4, err: bad}, true,
			metav1.ConditionFalse, "no valid version of it is in force", "", t1},
	}
	var conds []metav1.Condition
	for i, st := range steps {
		now := t0
		if i >= 3 {
			now = t1
		}
		var changed bool
		conds, changed = configConditions(conds, st.v, now)
		if changed != st.changed {
			t.Errorf("%s: changed %v, want %v", st.name, changed, st.changed)
		}
		acc := meta.FindStatusCondition(conds, v1alpha1.ConfigConditionAccepted)
		if acc == nil || acc.Status != st.accepted || !strings.Contains(acc.Message, st.msg) ||
			acc.ObservedGeneration != st.v.generation || !acc.LastTransitionTime.Equal(&st.transition) {
			t.Errorf("%s: Accepted %+v, want %s with %q at %v", st.name, acc, st.accepted, st.msg, st.transition)
		}
		wantReason := v1alpha1.ConfigReasonValid
		if st.accepted == metav1.ConditionFalse {
			wantReason = v1alpha1.ConfigReasonInvalid
		}
		if acc != nil && acc.Reason != wantReason {
			t.Errorf("%s: reason %s, want %s", st.name, acc.Reason, wantReason)
		}
		sup := meta.FindStatusCondition(conds, v1alpha1.ConfigConditionSupported)
		switch {
		case st.supported == "" && sup != nil:
			t.Errorf("%s: Supported %+v, want none", st.name, sup)
		case st.supported != "" && (sup == nil || sup.Status != metav1.ConditionFalse ||
			sup.Reason != v1alpha1.ConfigReasonNotSupportedYet || sup.Message != st.supported):
			t.Errorf("%s: Supported %+v, want False/NotSupportedYet %q", st.name, sup, st.supported)
		}
	}
}

// TestConfigConditionsResolvedRefs: ResolvedRefs is False while a reference
// is missing, and gone once it resolves.
func TestConfigConditionsResolvedRefs(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	missing := `spec.bfdPolicy "fast": no such BFDPolicy`
	conds, changed := configConditions(nil, configVerdict{generation: 1, unresolved: []string{missing}}, now)
	c := meta.FindStatusCondition(conds, v1alpha1.ConfigConditionResolvedRefs)
	if !changed || c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ConfigReasonRefNotFound ||
		c.Message != missing || c.ObservedGeneration != 1 {
		t.Errorf("missing reference: changed %v, ResolvedRefs %+v", changed, c)
	}
	if meta.FindStatusCondition(conds, v1alpha1.ConfigConditionSupported) != nil {
		t.Errorf("a missing reference made a Supported condition: %+v", conds)
	}
	if _, changed := configConditions(conds, configVerdict{generation: 1, unresolved: []string{missing}}, now); changed {
		t.Error("the same verdict again changed the conditions")
	}
	conds, changed = configConditions(conds, configVerdict{generation: 1}, now)
	if c := meta.FindStatusCondition(conds, v1alpha1.ConfigConditionResolvedRefs); !changed || c != nil {
		t.Errorf("resolved: changed %v, ResolvedRefs %+v", changed, c)
	}
}
