package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KubernetesVersion is the kube-apiserver version hack/k8sbin builds; the
// binaries live under ~/.cache/bgplb/k8s/<KubernetesVersion>/. A test keeps
// it equal to the version pinned in hack/k8sbin/go.mod.
const KubernetesVersion = "v1.37.2"

// Names of the two programs in a binary directory.
const (
	etcdBin      = "etcd"
	apiServerBin = "kube-apiserver"
)

// ErrNoBinaries means no directory with both etcd and kube-apiserver was
// found in the default places. Tests skip on it outside CI.
var ErrNoBinaries = errors.New("controlplane: no kube-apiserver and etcd binaries (build them with hack/k8sbin.sh or `make k8sbin`)")

// BinDir returns the directory holding etcd and kube-apiserver: the one
// named by $BGPLB_K8S_BIN, else by $KUBEBUILDER_ASSETS (the layout
// controller-runtime's envtest uses), else hack/k8sbin.sh's output under
// $BGPLB_CACHE or ~/.cache/bgplb. A directory named by a variable must hold
// both programs: that is an error of its own, not ErrNoBinaries, because
// someone pointed there on purpose.
func BinDir() (string, error) {
	home, _ := os.UserHomeDir() // without a home the cache default is skipped
	return findBinDir(binCandidates(os.Getenv, home), isExecutable)
}

// binCandidate is one place to look, and whether a variable named it.
type binCandidate struct {
	dir    string
	source string // the variable, or "default cache"
	named  bool
}

// binCandidates lists where to look, in order. The first variable that is
// set wins alone; otherwise the cache directories are tried.
func binCandidates(getenv func(string) string, home string) []binCandidate {
	for _, v := range []string{"BGPLB_K8S_BIN", "KUBEBUILDER_ASSETS"} {
		if d := getenv(v); d != "" {
			return []binCandidate{{dir: d, source: "$" + v, named: true}}
		}
	}
	var out []binCandidate
	if c := getenv("BGPLB_CACHE"); c != "" {
		out = append(out, binCandidate{dir: filepath.Join(c, "k8s", KubernetesVersion), source: "$BGPLB_CACHE"})
	}
	if home != "" {
		d := filepath.Join(home, ".cache", "bgplb", "k8s", KubernetesVersion)
		if len(out) == 0 || out[0].dir != d {
			out = append(out, binCandidate{dir: d, source: "default cache"})
		}
	}
	return out
}

// findBinDir returns the first candidate holding both programs.
func findBinDir(cands []binCandidate, executable func(string) bool) (string, error) {
	var looked []string
	for _, c := range cands {
		var missing []string
		for _, b := range []string{etcdBin, apiServerBin} {
			if !executable(filepath.Join(c.dir, b)) {
				missing = append(missing, b)
			}
		}
		if len(missing) == 0 {
			return c.dir, nil
		}
		if c.named {
			return "", fmt.Errorf("controlplane: %s=%s has no executable %s", strings.TrimPrefix(c.source, "$"), c.dir, strings.Join(missing, ", "))
		}
		looked = append(looked, c.dir)
	}
	return "", fmt.Errorf("%w; looked in %s", ErrNoBinaries, strings.Join(looked, ", "))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
