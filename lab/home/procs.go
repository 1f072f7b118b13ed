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
}

const controlPlaneReady = "control-plane.json"

// RunControlPlane is `bgplb lab control-plane`, run detached by Up in the
// root namespace: etcd and kube-apiserver on the lab's API link, the CRDs
// of crdDir installed, an admin kubeconfig and the speaker's written to
// stateDir, and then it waits for ctx (SIGTERM) to stop them, or ends
// with an error when one of them dies. Both children are killed if this
// process dies, so they never outlive it.
func RunControlPlane(ctx context.Context, stateDir, id, crdDir string) error {
	s, err := seed.Open(id)
	if err != nil {
		return err
	}
	addr := s.APIServerAddr()
	if !addr.IsValid() {
		return fmt.Errorf("lab %s has no API link", id)
	}
	env, err := controlplane.Run(ctx, controlplane.Options{BindAddress: addr, Dir: stateDir})
	if err != nil {
		return err
	}
	defer env.Stop()
	if err := env.InstallCRDs(ctx, crdDir); err != nil {
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
