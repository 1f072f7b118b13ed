package kubenode

import (
	"os"
	"strings"
	"testing"
)

// machineSysctls are global values a kubelet or kube-proxy would change:
// the kubelet's kernel tunables and the conntrack table's size.
var machineSysctls = append([]string{
	"net/netfilter/nf_conntrack_max",
	"kernel/pid_max",
}, globalSysctls...)

const conntrackHashsize = "/sys/module/nf_conntrack/parameters/hashsize"

// readSysctls reads the machine's (this test process's namespace's)
// values.
func readSysctls(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range machineSysctls {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			continue // not on this kernel (conntrack not loaded)
		}
		out[k] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(conntrackHashsize); err == nil {
		out[conntrackHashsize] = strings.TrimSpace(string(b))
	}
	if len(out) < len(globalSysctls) {
		t.Fatalf("read only %v", out)
	}
	return out
}

func checkSysctls(t *testing.T, before map[string]string, when string) {
	t.Helper()
	for k, v := range readSysctls(t) {
		if before[k] != v {
			t.Errorf("%s: the machine's %s changed from %s to %s", when, k, before[k], v)
		}
	}
}
