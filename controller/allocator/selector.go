package allocator

import (
	"errors"
	"fmt"
	"slices"
)

// Operator is a label selector requirement's operator; the values are
// metav1.LabelSelectorOperator's, so the reconciler converts by a cast.
type Operator string

const (
	OpIn           Operator = "In"
	OpNotIn        Operator = "NotIn"
	OpExists       Operator = "Exists"
	OpDoesNotExist Operator = "DoesNotExist"
)

// Requirement is one expression of a Selector.
type Requirement struct {
	Key      string
	Operator Operator
	Values   []string
}

// Selector is a metav1.LabelSelector as plain values, with its meaning: every
// MatchLabels pair and every requirement must hold, and an empty selector
// matches everything.
type Selector struct {
	MatchLabels      map[string]string
	MatchExpressions []Requirement
}

// Validate refuses what the API server would refuse for a LabelSelector, so
// that a bad selector is reported rather than silently matching nothing.
func (s Selector) Validate() error {
	for i, r := range s.MatchExpressions {
		if r.Key == "" {
			return fmt.Errorf("matchExpressions[%d]: empty key", i)
		}
		switch r.Operator {
		case OpIn, OpNotIn:
			if len(r.Values) == 0 {
				return fmt.Errorf("matchExpressions[%d]: %s needs values", i, r.Operator)
			}
		case OpExists, OpDoesNotExist:
			if len(r.Values) != 0 {
				return fmt.Errorf("matchExpressions[%d]: %s takes no values", i, r.Operator)
			}
		default:
			return fmt.Errorf("matchExpressions[%d]: unknown operator %q", i, r.Operator)
		}
	}
	return nil
}

// Matches reports whether labels satisfy the selector. An invalid
// requirement matches nothing: failing closed keeps a pool from being opened
// to everyone by a typo.
func (s Selector) Matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		v, ok := labels[r.Key]
		var hold bool
		switch r.Operator {
		case OpIn:
			hold = ok && slices.Contains(r.Values, v)
		case OpNotIn:
			hold = !ok || !slices.Contains(r.Values, v)
		case OpExists:
			hold = ok
		case OpDoesNotExist:
			hold = !ok
		}
		if !hold {
			return false
		}
	}
	return true
}

// ServiceAllocation narrows a pool to some Services and ranks it.
type ServiceAllocation struct {
	// Priority orders the pools tried for automatic assignment: a lower
	// positive value is tried first; 0 means unset and comes after every set
	// priority. Negative values are refused.
	Priority int
	// Namespaces and NamespaceSelectors admit a Service whose namespace is
	// listed or whose namespace's labels match any selector; when both are
	// empty every namespace is admitted.
	Namespaces         []string
	NamespaceSelectors []Selector
	// ServiceSelectors admit a Service whose labels match any selector;
	// empty admits every Service. Both conditions must hold.
	ServiceSelectors []Selector
}

func (sa *ServiceAllocation) validate() error {
	if sa.Priority < 0 {
		return fmt.Errorf("serviceAllocation.priority %d is negative", sa.Priority)
	}
	for i, s := range sa.NamespaceSelectors {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("serviceAllocation.namespaceSelectors[%d]: %w", i, err)
		}
	}
	for i, s := range sa.ServiceSelectors {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("serviceAllocation.serviceSelectors[%d]: %w", i, err)
		}
	}
	for _, ns := range sa.Namespaces {
		if ns == "" {
			return errors.New("serviceAllocation.namespaces: empty name")
		}
	}
	return nil
}

// admits reports whether a pool restricted by sa may serve the request; a
// nil sa admits everything.
func (sa *ServiceAllocation) admits(req *Request) bool {
	if sa == nil {
		return true
	}
	ns := len(sa.Namespaces) == 0 && len(sa.NamespaceSelectors) == 0 ||
		slices.Contains(sa.Namespaces, req.Key.Namespace) ||
		slices.ContainsFunc(sa.NamespaceSelectors, func(s Selector) bool { return s.Matches(req.NamespaceLabels) })
	svc := len(sa.ServiceSelectors) == 0 ||
		slices.ContainsFunc(sa.ServiceSelectors, func(s Selector) bool { return s.Matches(req.Labels) })
	return ns && svc
}
