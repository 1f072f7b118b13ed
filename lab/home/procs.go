package home

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/internal/proc"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/seed"
)

// SpeakerUser is the user the speakers authenticate as; a
// ClusterRoleBinding gives it config/rbac/speaker's ClusterRole.
const SpeakerUser = "bgplb-speaker"

// controlPlaneInfo is what the control-plane process writes once the API
// server is ready and the CRDs are installed: its presence is the signal.
type controlPlaneInfo struct {
	Kubeconfig        string `json:"kubeconfig"`
	SpeakerKubeconfig string `json:"speakerKubeconfig"`
	APIServer         string `json:"apiServer"`
	// With a real cluster: each kubelet's kubeconfig by node, kube-proxy's,
	// and the cluster CA.
	NodeKubeconfigs map[string]string `json:"nodeKubeconfigs,omitempty"`
	ProxyKubeconfig string            `json:"proxyKubeconfig,omitempty"`
	CACert          string            `json:"caCert,omitempty"`
}

const controlPlaneReady = "control-plane.json"

// ControlPlaneOptions are `bgplb lab control-plane`'s flags.
type ControlPlaneOptions struct {
	StateDir, ID, CRDDir string
	// Cluster also runs the controller manager and scheduler, for kubelets
	// to join, and writes their credentials.
	Cluster bool
}

// nodeGrace is how long a node may miss its heartbeat before the node
// controller calls it NotReady. The default 50 s would hide the story's
// failover behind a wait; the kubelets renew their Lease every second
// (lab/kubenode) so that 5 s is still four missed renewals.
const nodeGrace = "5s"

// controlPlaneOptions are the control plane of a lab with its API on addr.
func controlPlaneOptions(addr netip.Addr, dir string, cluster bool) controlplane.Options {
	o := controlplane.Options{BindAddress: addr, Dir: dir}
	if cluster {
		o.Controllers = true
		o.ServiceCIDRs = seed.ServiceCIDRs()
		o.ControllerManagerFlags = []string{"--node-monitor-grace-period=" + nodeGrace, "--node-monitor-period=1s"}
	}
	return o
}

// RunControlPlane is `bgplb lab control-plane`, run detached by Up in the
// root namespace: etcd and kube-apiserver on the lab's API link (and with
// Cluster the controller manager and scheduler), the CRDs of CRDDir
// installed, an admin kubeconfig and the speaker's written to StateDir,
// and then it waits for ctx (SIGTERM) to stop them, or ends with an error
// when one of them dies. The children are killed if this process dies, so
// they never outlive it.
func RunControlPlane(ctx context.Context, o ControlPlaneOptions) error {
	stateDir := o.StateDir
	s, err := seed.Open(o.ID)
	if err != nil {
		return err
	}
	addr := s.APIServerAddr()
	if !addr.IsValid() {
		return fmt.Errorf("lab %s has no API link", o.ID)
	}
	env, err := controlplane.Run(ctx, controlPlaneOptions(addr, stateDir, o.Cluster))
	if err != nil {
		return err
	}
	defer env.Stop()
	if err := env.InstallCRDs(ctx, o.CRDDir); err != nil {
		return err
	}
	speaker, err := env.UserKubeconfig(SpeakerUser)
	if err != nil {
		return err
	}
	info := controlPlaneInfo{
		Kubeconfig:        filepath.Join(stateDir, "kubeconfig"),
		SpeakerKubeconfig: filepath.Join(stateDir, "kubeconfig-speaker"),
		APIServer:         env.Config.Host,
	}
	for src, dst := range map[string]string{env.Kubeconfig: info.Kubeconfig, speaker: info.SpeakerKubeconfig} {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return err
		}
	}
	if o.Cluster {
		if err := clusterCredentials(env, s.Nodes(), &info); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(info)
	tmp := filepath.Join(stateDir, controlPlaneReady+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(stateDir, controlPlaneReady)); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "control plane ready: %s (dir %s)\n", env.Config.Host, env.Dir)
	select {
	case <-ctx.Done():
		return env.Stop()
	case <-env.Done():
		return errors.Join(env.Err(), env.Stop())
	}
}

// clusterCredentials writes the kubelets' and kube-proxy's kubeconfigs
// into the control plane's directory and records them, with the CA.
func clusterCredentials(env *controlplane.Server, nodes []string, info *controlPlaneInfo) error {
	info.NodeKubeconfigs = map[string]string{}
	for _, n := range nodes {
		p, err := env.NodeKubeconfig(n)
		if err != nil {
			return err
		}
		info.NodeKubeconfigs[n] = p
	}
	p, err := env.ProxyKubeconfig()
	if err != nil {
		return err
	}
	info.ProxyKubeconfig, info.CACert = p, env.CACertFile()
	return nil
}

// RunDNSResponder is `bgplb lab dns-responder`, run detached inside a
// node's namespace: the Pi-hole stand-in of package seed (a DNS responder
// on addr that names the node in its answers) until ctx ends.
func RunDNSResponder(ctx context.Context, id, node string, addr netip.Addr) error {
	s, err := seed.Open(id)
	if err != nil {
		return err
	}
	d, err := s.StartDNS(ctx, node, addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "answering DNS on %s:53 as %s\n", addr, node)
	<-ctx.Done()
	return d.Close() // never s.Close: that would remove the lab
}

// startRoot starts a detached process in the root namespace (its own
// session, no parent-death signal), output to log.
func startRoot(log string, argv ...string) (Proc, error) {
	p, err := proc.Start(proc.Options{LogPath: log, Detach: true}, argv[0], argv[1:]...)
	if err != nil {
		return Proc{}, err
	}
	return Proc{Ref: p.Ref(), Log: log}, nil
}

// startIn starts a detached process in a lab host.
func startIn(ctx context.Context, s *seed.Seed, host, label string, argv ...string) (Proc, error) {
	ns := s.Host(host)
	if ns == nil {
		return Proc{}, fmt.Errorf("no host %s in lab %s", host, s.ID)
	}
	p, err := ns.StartWith(ctx, lab.StartOptions{Label: label, Detach: true}, argv[0], argv[1:]...)
	if err != nil {
		return Proc{}, err
	}
	return Proc{Ref: p.Ref(), Host: host, Log: p.LogPath}, nil
}

// waitFile waits until path exists, failing early if p dies.
func waitFile(ctx context.Context, path string, p Proc) error {
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		if _, err := os.Stat(path); err == nil {
			return true, nil
		}
		if !p.Alive() {
			return false, lab.Permanent(errors.New("the process exited"))
		}
		return false, nil
	})
	return err
}
