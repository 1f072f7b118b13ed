// Package home is `bgplb lab`: the seed's home lab (package lab/seed) with
// every bgplb part running in it, brought up by one command and left
// running after it, so that a newcomer can look around, and torn down again
// without a trace.
//
// Up builds the lab, starts the control plane, `bgplb router` on the
// router(s), `bgplb controller` in the root namespace and `bgplb speaker` on
// both nodes, all detached so that they outlive the command; applies the
// example configuration of deploy/examples; plays the Pi-hole pod on node1
// (its EndpointSlice, the VIP kube-proxy would add, and a DNS responder
// process); and prints what the write-up shows. What it made is recorded in
// a state directory (State), which Status, Exec, Kubectl and Down read.
//
// The control plane runs in a process of its own (`bgplb lab
// control-plane`, package controlplane): etcd and kube-apiserver get a
// parent-death signal (SIGKILL when the process that started them ends), so
// they must be started by a process that stays. Every process is started
// and stopped by package proc.
package home

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bgplb/bgplb/internal/proc"
)

// DefaultPrefix starts the lab's ID (namespaces lab1a2b3c-router, ...).
const DefaultPrefix = "lab"

// Options shape Up (and, for StateDir, every other call).
type Options struct {
	// Routers is 1 (default) or 2.
	Routers int
	// BinPath is the bgplb binary the lab runs; default this executable.
	BinPath string
	// StateDir records the lab; default DefaultStateDir().
	StateDir string
	// SourceDir is a bgplb source tree to take deploy/examples and config/
	// from; default the copies built into the binary.
	SourceDir string
	// Prefix starts the lab's ID; default DefaultPrefix.
	Prefix string
	// Cluster runs a real cluster: a kubelet, containerd and kube-proxy in
	// each node, bgplb installed from its bundle, the Pi-hole a Deployment.
	// Off, the lab plays the Kubernetes half (Nodes, the pod, its
	// EndpointSlice) and runs bgplb's roles as plain processes.
	Cluster bool
	// Mode is how the client reaches the Pi-hole: ModeBGP (default), the
	// routers learning its address from the nodes, or ModeL2, a node
	// answering ARP and NDP for an address on the LAN (real cluster only).
	Mode string
	// All makes Down also remove labs with the prefix that no state
	// records.
	All bool
	// Out receives progress and views; nil discards.
	Out io.Writer
	// Figure, if set, receives what the verbs measure, by name (Fail:
	// "fail-dropped", from the cut until no router routes via the node;
	// in L2 mode "l2-answered", from the cut until the client's first
	// answered query, and "l2-moved" for Move).
	Figure func(name string, d time.Duration)
	// Count, if set, receives what the verbs count, by name (Fail in L2
	// mode: "l2-lost", the client's queries lost; "l2-announcements", the
	// gratuitous ARPs from the new owner the client saw after the cut).
	Count func(name string, n int)
}

func (o *Options) defaults() error {
	if o.Routers == 0 {
		o.Routers = 1
	}
	if o.Routers < 1 || o.Routers > 2 {
		return fmt.Errorf("--routers %d: the lab has 1 or 2 routers", o.Routers)
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir()
	}
	switch o.Mode {
	case "":
		o.Mode = ModeBGP
	case ModeBGP, ModeL2:
	default:
		return fmt.Errorf("--mode %q: want %s or %s", o.Mode, ModeBGP, ModeL2)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.BinPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the bgplb binary: %w (pass its path)", err)
		}
		o.BinPath = exe
	}
	abs, err := filepath.Abs(o.BinPath)
	if err != nil {
		return err
	}
	o.BinPath = abs
	return nil
}

// DefaultStateDir is /run/bgplb-lab for root (gone after a reboot, as the
// lab is), else ~/.cache/bgplb/lab.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/run/bgplb-lab"
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "bgplb-lab")
	}
	return filepath.Join(home, ".cache", "bgplb", "lab")
}

// State is what Up made, saved as state.json in the state directory as
// soon as each piece exists, so that Down finds everything even after a
// failed or interrupted Up.
type State struct {
	ID      string `json:"id"`
	Routers int    `json:"routers"`
	// Bin is the bgplb binary the lab runs; move, fail and restart start
	// processes with it too.
	Bin string `json:"bin,omitempty"`
	// Kubeconfig is the admin's (for kubectl); SpeakerKubeconfig holds only
	// the speaker's RBAC.
	Kubeconfig        string `json:"kubeconfig,omitempty"`
	SpeakerKubeconfig string `json:"speakerKubeconfig,omitempty"`
	APIServer         string `json:"apiServer,omitempty"`
	// Procs are the processes started, by name: control-plane,
	// controller, router, router2, speaker-node1, speaker-node2,
	// dns-node1.
	Procs map[string]Proc `json:"procs,omitempty"`
	// Cluster is set for a real cluster (Options.Cluster).
	Cluster bool `json:"cluster,omitempty"`
	// Images are the image references a real cluster's nodes hold, by
	// lab/images name (pause, pihole, bgplb).
	Images map[string]string `json:"images,omitempty"`
	// Mode is Options.Mode: the verbs act by it. Empty in a state written
	// before L2 mode, which was BGP.
	Mode string `json:"mode,omitempty"`
	// L2Lease is what TuneLease set on the speakers (zero: their
	// defaults).
	L2Lease L2Lease `json:"l2Lease,omitzero"`
	// Detection is how the routers notice a node gone: BFD, or the hold
	// time alone (TuneBFD changes it).
	Detection Detection `json:"detection"`
	// Ready is set once Up has finished.
	Ready bool `json:"ready"`

	dir string
}

// Proc is one process of the lab: its pid and start time (proc.Ref), so
// that a later command finds it again and never takes another process
// given the same pid for it.
type Proc struct {
	proc.Ref
	// Host is the lab host it runs in; empty for the root namespace.
	Host   string `json:"host,omitempty"`
	Log    string `json:"log"`
	Socket string `json:"socket,omitempty"`
}

const stateFile = "state.json"

// LoadState reads the state directory; a missing one is os.ErrNotExist.
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	st := &State{dir: dir}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state %s: %w (remove it with `bgplb lab down`)", dir, err)
	}
	return st, nil
}

// save writes state.json atomically.
func (st *State) save() error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(st.dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving lab state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(st.dir, stateFile))
}

func (st *State) path(name string) string { return filepath.Join(st.dir, name) }

// Alive reports whether the process is still the one the lab started (see
// proc.Ref.Alive).
func (p Proc) Alive() bool {
	if p.Start == 0 {
		// Recorded by an older bgplb, without a start time: a bgplb
		// command line is the best evidence left.
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/cmdline")
		return err == nil && strings.Contains(string(b), "bgplb") && p.Ref.Alive()
	}
	return p.Ref.Alive()
}

// stop stops the process if it is still the one the lab started: SIGTERM,
// then SIGKILL after grace.
func (p Proc) stop(grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	return p.Ref.Stop(grace)
}

// errNoLab is returned by calls that need a running lab.
var errNoLab = errors.New("no lab is up (start one with `bgplb lab up` or `make lab`)")
