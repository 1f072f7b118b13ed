package controller

import (
	"slices"
	"testing"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

func TestStaleNodes(t *testing.T) {
	exists := map[string]bool{"node1": true, "node2": true}
	reported := []string{
		reportNode("node1", nil),
		reportNode("", map[string]string{v1alpha1.LabelNode: "gone"}), // label only
		reportNode("gone", map[string]string{v1alpha1.LabelNode: "node2"}),
		reportNode("", nil), // names no node: not ours to judge
		reportNode("dead", nil),
		reportNode("node2", nil),
	}
	if got, want := staleNodes(exists, reported), []string{"dead", "gone"}; !slices.Equal(got, want) {
		t.Errorf("staleNodes %q, want %q", got, want)
	}
	if got := staleNodes(exists, nil); got != nil {
		t.Errorf("no reports: %q", got)
	}
}
