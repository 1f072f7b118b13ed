package kubenode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bgplb/bgplb/internal/proc"
)

// layout names every path of one node. Inside the node's mount namespace
// Dir/run is /run and Dir/var is /var, so containerd and the kubelet keep
// their built-in paths (/run/containerd, /var/lib/kubelet, /var/log/pods,
// /var/run/netns, /var/lib/cni) and still write only below Dir.
type layout struct {
	Dir string
}

func (l layout) path(p ...string) string { return filepath.Join(append([]string{l.Dir}, p...)...) }

func (l layout) stateFile() string      { return l.path("state.json") }
func (l layout) confDir() string        { return l.path("conf") }
func (l layout) logDir() string         { return l.path("logs") }
func (l layout) cniConfDir() string     { return l.path("cni", "net.d") }
func (l layout) sysctlDir() string      { return l.path("sysctl") }
func (l layout) runDir() string         { return l.path("run") }
func (l layout) varDir() string         { return l.path("var") }
func (l layout) containerdConf() string { return l.path("conf", "containerd.toml") }
func (l layout) kubeletConf() string    { return l.path("conf", "kubelet.yaml") }
func (l layout) proxyConf() string      { return l.path("conf", "kube-proxy.yaml") }
func (l layout) resolvConf() string     { return l.path("conf", "resolv.conf") }
func (l layout) logFile(name string) string {
	return l.path("logs", name+".log")
}

// holderReady is written by the holder once every mount is in place; its
// path outside the namespace (the holder writes /run/...).
func (l layout) holderReady() string { return l.path("run", "bgplb-holder-ready") }

// The paths processes inside the node's mount namespace use.
const (
	containerdSock = "/run/containerd/containerd.sock"
	k8sNamespace   = "k8s.io" // containerd's namespace for CRI
)

// dirs are the directories Start creates before the holder binds them.
func (l layout) dirs() []string {
	return []string{
		l.confDir(), l.logDir(), l.cniConfDir(), l.sysctlDir(), l.runDir(),
		l.path("var", "lib"), l.path("var", "log"), l.path("var", "tmp"),
	}
}

// state is what Remove needs to find everything of a node again, from disk
// only: written before the first process starts and after each start.
type state struct {
	Name   string `json:"name"`
	ID     string `json:"id"`
	Netns  string `json:"netns"`
	Bridge string `json:"bridge"`
	// CgroupRoot is the kubelet's cgroup parent (/bgplb-ID); the daemons
	// run in its child daemonCgroup, pods below it, in every hierarchy.
	CgroupRoot string `json:"cgroupRoot"`
	// MountNS identifies the node's mount namespace (device and inode of
	// /proc/PID/ns/mnt), to find its processes once the holder is gone.
	MountNS nsID `json:"mountNS"`
	// Procs are the detached daemons by role (holder, containerd, ...).
	Procs map[string]proc.Ref `json:"procs"`
}

type nsID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func (id nsID) valid() bool { return id.Ino != 0 }

// daemonCgroup is the child of the cgroup root the daemons run in.
const daemonCgroup = "daemons"

func readState(dir string) (state, error) {
	b, err := os.ReadFile(layout{dir}.stateFile())
	if err != nil {
		return state{}, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return state{}, fmt.Errorf("kubenode: %s: %w", layout{dir}.stateFile(), err)
	}
	return s, nil
}

// writeState replaces the state file atomically: a crash never leaves a
// half-written one that Remove could not read.
func writeState(dir string, s state) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	f := layout{dir}.stateFile()
	tmp := f + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("kubenode: state: %w", err)
	}
	if err := os.Rename(tmp, f); err != nil {
		return fmt.Errorf("kubenode: state: %w", err)
	}
	return nil
}

// checkDir rejects a node directory the holder's binds would hide or that
// is not absolute: Dir must stay visible at the same path inside.
func checkDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("kubenode: Dir %q is not absolute", dir)
	}
	clean := filepath.Clean(dir)
	for _, hidden := range []string{"/run", "/var", "/proc", "/sys", "/dev"} {
		if clean == hidden || strings.HasPrefix(clean, hidden+"/") {
			return fmt.Errorf("kubenode: Dir %s is below %s, which the node's mount namespace replaces", dir, hidden)
		}
	}
	if clean == "/" {
		return errors.New("kubenode: Dir is /")
	}
	return nil
}
