package lbmodel

import (
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// pool is a pool of the given entries, created sec seconds into 2026.
func pool(name string, sec int, entries ...string) Pool {
	rs, err := ParseRanges(entries)
	if err != nil {
		panic(err)
	}
	return Pool{Name: name, Created: at(sec), Ranges: rs, AutoAssign: true}
}

func at(sec int) time.Time { return time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC) }

func sel(s string) labels.Selector {
	out, err := labels.Parse(s)
	if err != nil {
		panic(err)
	}
	return out
}

// expr is a selector with one expression, as a CRD holds it.
func expr(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelector {
	return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func meta(name string, sec int) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(at(sec))}
}
