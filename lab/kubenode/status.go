package kubenode

import (
	"fmt"

	"github.com/bgplb/bgplb/internal/proc"
)

// Daemon is one of a node's detached processes, as its state file records
// it: for `bgplb lab status` and liveness checks (Ref.Alive) by a process
// that did not start the node.
type Daemon struct {
	// Role is "holder" (the mount namespace's), "containerd", "kubelet" or
	// "kube-proxy".
	Role string
	Ref  proc.Ref
	// Log is the daemon's output.
	Log string
}

// daemonRoles are the roles in start order.
var daemonRoles = []string{roleHolder, roleContainerd, roleKubelet, roleProxy}

// Daemons lists the daemons recorded for the node in dir, in start order;
// one a failed or unfinished start never got is missing.
func Daemons(dir string) ([]Daemon, error) {
	st, err := readState(dir)
	if err != nil {
		return nil, fmt.Errorf("kubenode: no node in %s: %w", dir, err)
	}
	var out []Daemon
	for _, r := range daemonRoles {
		if ref, ok := st.Procs[r]; ok {
			out = append(out, Daemon{Role: r, Ref: ref, Log: LogPath(dir, r)})
		}
	}
	return out, nil
}

// LogPath is the log of the daemon role of the node in dir.
func LogPath(dir, role string) string { return layout{dir}.logFile(role) }
