package metallb

import (
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// Objects are the converted objects in the order they should be applied:
// what others name comes first.
func (r *Result) Objects() []any {
	var out []any
	for i := range r.Pools {
		out = append(out, &r.Pools[i])
	}
	for i := range r.BFDPolicies {
		out = append(out, &r.BFDPolicies[i])
	}
	for i := range r.Secrets {
		out = append(out, &r.Secrets[i])
	}
	for i := range r.Routers {
		out = append(out, &r.Routers[i])
	}
	for i := range r.BGPPolicies {
		out = append(out, &r.BGPPolicies[i])
	}
	for i := range r.L2Policies {
		out = append(out, &r.L2Policies[i])
	}
	return out
}

// Write prints the notes as comments, so that they travel with the file
// someone reviews, then the objects as YAML documents.
func (r *Result) Write(w io.Writer) error {
	fmt.Fprintf(w, "# Converted from MetalLB by bgplb import metallb.\n")
	if len(r.Notes) == 0 {
		fmt.Fprintf(w, "# Every field was carried.\n")
	} else {
		fmt.Fprintf(w, "# Not carried, or needing a step of yours (%d):\n", len(r.Notes))
		for _, n := range r.Notes {
			fmt.Fprintf(w, "#   - %s\n", n)
		}
	}
	for _, o := range r.Objects() {
		b, err := marshal(o)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "---\n%s", b); err != nil {
			return err
		}
	}
	return nil
}

// marshal drops what the API server fills in (status, the creation
// timestamp), which would otherwise print as zeros and nulls.
func marshal(o any) ([]byte, error) {
	j, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	return yaml.Marshal(m)
}
