package v1alpha1

import (
	"encoding/json"
	"strings"
	"testing"
)

// An Established session announcing nothing must say 0 in `kubectl get
// bgpsessionstatuses`, not leave the column blank as if unknown.
func TestSessionStatusShowsZeroPrefixes(t *testing.T) {
	b, err := json.Marshal(BGPSessionStatusStatus{State: "Established"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"prefixesAnnounced":0`) {
		t.Errorf("status %s lacks prefixesAnnounced 0", b)
	}
}
