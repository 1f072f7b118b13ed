package controlplane

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// Names of the two controller programs in a binary directory.
const (
	controllerManagerBin = "kube-controller-manager"
	schedulerBin         = "kube-scheduler"
)

// controllerFiles are the paths kube-controller-manager reads.
type controllerFiles struct {
	kubeconfig          string
	caCert, caKey       string // the cluster CA: root-ca-file, and CSR signing
	saSigningKey        string // signs legacy ServiceAccount token Secrets
	schedulerKubeconfig string
	// flexDir is where the manager looks for FlexVolume drivers: its own
	// directory, not the machine's /usr/libexec/kubernetes, which it would
	// otherwise create.
	flexDir string
}

// startControllers starts kube-controller-manager and kube-scheduler, each
// under its own identity from the environment's CA (the API server binds
// system:kube-controller-manager and system:kube-scheduler to the roles they
// need), and waits until the controller manager acts.
func (s *Server) startControllers(ctx context.Context) error {
	kcmDir := filepath.Join(s.Dir, controllerManagerBin)
	schedDir := filepath.Join(s.Dir, schedulerBin)
	for _, d := range []string{kcmDir, schedDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("controlplane: %w", err)
		}
	}
	api := newAPIServerFiles(filepath.Join(s.Dir, apiServerBin))
	f := controllerFiles{
		kubeconfig:          filepath.Join(kcmDir, "kubeconfig"),
		caCert:              api.caCert,
		caKey:               filepath.Join(kcmDir, "ca.key"),
		saSigningKey:        api.saSigningKey,
		schedulerKubeconfig: filepath.Join(schedDir, "kubeconfig"),
		flexDir:             filepath.Join(kcmDir, "volume-plugins"),
	}
	if err := s.writeControllerFiles(f); err != nil {
		return err
	}
	if err := s.startProcess(controllerManagerBin, kcmDir, append(controllerManagerArgs(f), s.opts.ControllerManagerFlags...)); err != nil {
		return err
	}
	if err := s.startProcess(schedulerBin, schedDir, schedulerArgs(f.schedulerKubeconfig)); err != nil {
		return err
	}
	// With no serving port there is no /healthz to ask. The serviceaccount
	// controller creating "default" in "default" shows the manager has
	// synced its informers and its controllers run; the scheduler has no
	// such sign without leader election, but its early exit still ends
	// Poll and Done.
	return s.Poll(ctx, `ServiceAccount "default" (kube-controller-manager)`, func(ctx context.Context) error {
		_, err := s.Client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// writeControllerFiles writes the two kubeconfigs and the CA key. The CA
// key is on disk only for the controller manager's CSR signer: kubelets
// bootstrapping a client certificate need it signed by the CA the API
// server trusts.
func (s *Server) writeControllerFiles(f controllerFiles) error {
	for path, user := range map[string]string{
		f.kubeconfig:          "system:kube-controller-manager",
		f.schedulerKubeconfig: "system:kube-scheduler",
	} {
		kp, err := s.ca.issue(certSpec{commonName: user, usage: x509.ExtKeyUsageClientAuth}, time.Now())
		if err != nil {
			return err
		}
		c := rest.CopyConfig(s.Config)
		c.CertData, c.KeyData = kp.certPEM, kp.keyPEM
		if err := writeKubeconfig(path, c); err != nil {
			return err
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(s.ca.key)
	if err != nil {
		return fmt.Errorf("controlplane: CA key: %w", err)
	}
	if err := os.WriteFile(f.caKey, pemBlock("PRIVATE KEY", der), 0o600); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	return nil
}

// controllerManagerArgs are kube-controller-manager's flags. Choices that
// are not defaults:
//   - --secure-port=0: nothing scrapes it, and no port means no port race
//     with parallel tests and nothing listening beyond loopback.
//   - --leader-elect=false: one instance, and a restarted manager must not
//     wait out a dead one's lease.
//   - --use-service-account-credentials: each controller acts as its own
//     ServiceAccount in kube-system, as in a real cluster, so RBAC denials
//     show up here the way they would there.
//   - no --cloud-provider: the cloud controllers stay off; node IPAM too
//     (no --allocate-node-cidrs) until kubelets run.
func controllerManagerArgs(f controllerFiles) []string {
	return []string{
		"--kubeconfig=" + f.kubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--controllers=*",
		"--root-ca-file=" + f.caCert,
		"--service-account-private-key-file=" + f.saSigningKey,
		"--cluster-signing-cert-file=" + f.caCert,
		"--cluster-signing-key-file=" + f.caKey,
		"--flex-volume-plugin-dir=" + f.flexDir,
		"--profiling=false",
	}
}

// schedulerArgs are kube-scheduler's flags, chosen as the controller
// manager's.
func schedulerArgs(kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--profiling=false",
	}
}

// checkControllerBins fails before anything starts when dir predates the
// controller binaries (a cache built by an older hack/k8sbin.sh); it wraps
// ErrNoBinaries so that tests outside CI skip on it as on no binaries.
func checkControllerBins(dir string) error {
	for _, b := range []string{controllerManagerBin, schedulerBin} {
		if !isExecutable(filepath.Join(dir, b)) {
			return fmt.Errorf("%w: %s has no executable %s (rebuild with hack/k8sbin.sh)", ErrNoBinaries, dir, b)
		}
	}
	return nil
}
