// Package kubetest runs a real control plane, etcd and kube-apiserver built
// by hack/k8sbin.sh, for integration tests and for `bgplb lab`. Run starts
// one and returns its client configuration; Start does the same inside a
// test, skipping when the binaries are missing (failing in CI) and stopping
// it at cleanup; Shared starts one per test binary on first use.
//
// Each control plane gets a fresh temporary directory (etcd data, the
// generated PKI, logs, a kubeconfig), free ports, and its own throwaway
// certificate authority. Clients authenticate with a client certificate of
// an admin in system:masters; RBAC is on, so UserConfig can stand in for
// any other user. Nothing else of a cluster runs: no controller-manager, no
// scheduler, no kubelet, no kube-proxy.
//
// The package does not import "testing", so that the bgplb binary can use
// Run without linking it; Start and Shared take the TB interface, which
// *testing.T and *testing.B satisfy.
package kubetest

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Env is a running control plane. Its fields are set by Run and not
// changed after; its methods are safe for concurrent use.
type Env struct {
	// Config reaches the API server as an admin (group system:masters),
	// with no client-side rate limit: the server's own flow control is what
	// tests should meet.
	Config *rest.Config
	// Client is a clientset built from Config.
	Client kubernetes.Interface
	// Kubeconfig is the path of a kubeconfig file with the same
	// credentials, for other processes (KUBECONFIG=..., --kubeconfig).
	Kubeconfig string
	// Addr is where clients reach the API server.
	Addr netip.AddrPort
	// Dir holds everything the control plane wrote; Stop removes it.
	Dir string

	opts    Options
	ca      *authority
	spawner *spawner
	procs   []*process // in start order: etcd, kube-apiserver

	stopOnce sync.Once
	stopErr  error
}

// errPortTaken marks a start that lost the race for a free port to another
// process; Run retries it with new ports.
var errPortTaken = errors.New("port taken")

const (
	startAttempts = 3
	stopGrace     = 5 * time.Second
	pollInterval  = 50 * time.Millisecond
)

// Run starts etcd and kube-apiserver and waits until the API server is
// ready. ctx bounds the start-up only: the processes run until Stop, which
// the caller must call (they are also killed if this process dies).
func Run(ctx context.Context, o Options) (*Env, error) {
	o, err := withDefaults(o)
	if err != nil {
		return nil, err
	}
	if o.BinDir == "" {
		if o.BinDir, err = BinDir(); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		e, err := start(ctx, o)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == startAttempts {
			return e, err
		}
		o.Logger.Info("kubetest: port taken meanwhile, retrying", "attempt", attempt, "err", err)
	}
}

func start(ctx context.Context, o Options) (e *Env, err error) {
	began := time.Now()
	dir, err := os.MkdirTemp(o.Dir, "kubetest-")
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	e = &Env{Dir: dir, opts: o, spawner: newSpawner()}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Stop())
			e = nil
		}
	}()
	etcdURL, err := e.startEtcd(ctx)
	if err != nil {
		return e, err
	}
	o.Logger.Info("kubetest: etcd ready", "url", etcdURL, "after", time.Since(began))
	if err := e.startAPIServer(etcdURL); err != nil {
		return e, err
	}
	if err := e.waitAPIServer(ctx); err != nil {
		return e, err
	}
	o.Logger.Info("kubetest: kube-apiserver ready", "addr", e.Addr, "after", time.Since(began), "dir", dir)
	return e, nil
}

func (e *Env) startEtcd(ctx context.Context) (string, error) {
	dir := filepath.Join(e.Dir, "etcd")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("kubetest: %w", err)
	}
	loop := netip.MustParseAddr("127.0.0.1")
	client, err := freePort(loop)
	if err != nil {
		return "", err
	}
	peer, err := freePort(loop)
	if err != nil {
		return "", err
	}
	p, err := startProcess(e.spawner, etcdBin, filepath.Join(e.opts.BinDir, etcdBin), dir, etcdArgs(dir, client, peer))
	if err != nil {
		return "", err
	}
	e.procs = append(e.procs, p)
	url := "http://" + client.String()
	hc := &http.Client{Timeout: time.Second}
	err = e.poll(ctx, "etcd /health", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
	return url, err
}

// startAPIServer writes the PKI and the kubeconfig and starts the server.
func (e *Env) startAPIServer(etcdURL string) error {
	dir := filepath.Join(e.Dir, "kube-apiserver")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	addr, err := freePort(e.opts.BindAddress)
	if err != nil {
		return err
	}
	e.Addr = netip.AddrPortFrom(e.opts.clientAddress(), addr.Port())
	files := newAPIServerFiles(dir)
	admin, err := e.writePKI(files)
	if err != nil {
		return err
	}
	e.Config = &rest.Config{
		Host: "https://" + e.Addr.String(),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   e.ca.certPEM,
			CertData: admin.certPEM,
			KeyData:  admin.keyPEM,
		},
		QPS: -1, // see the field's comment
	}
	if e.Client, err = kubernetes.NewForConfig(e.Config); err != nil {
		return fmt.Errorf("kubetest: client: %w", err)
	}
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	if err := writeKubeconfig(e.Kubeconfig, e.Config); err != nil {
		return err
	}
	args := apiServerArgs(e.opts, files, addr.Port(), etcdURL)
	p, err := startProcess(e.spawner, apiServerBin, filepath.Join(e.opts.BinDir, apiServerBin), dir, args)
	if err != nil {
		return err
	}
	e.procs = append(e.procs, p)
	return nil
}

// writePKI makes the CA, the serving certificate and the service-account
// key for the server, and returns the admin's client certificate.
func (e *Env) writePKI(f apiServerFiles) (keyPair, error) {
	now := time.Now()
	ca, err := newAuthority(now)
	if err != nil {
		return keyPair{}, err
	}
	e.ca = ca
	ips, dns := e.opts.servingSANs()
	serving, err := ca.issue(certSpec{commonName: "kube-apiserver", ips: ips, dnsNames: dns, usage: x509.ExtKeyUsageServerAuth}, now)
	if err != nil {
		return keyPair{}, err
	}
	saKey, saPub, err := newSigningKey()
	if err != nil {
		return keyPair{}, err
	}
	for path, data := range map[string][]byte{
		f.caCert: ca.certPEM, f.servingCert: serving.certPEM, f.key: serving.keyPEM,
		f.saSigningKey: saKey, f.saPublicKey: saPub,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return keyPair{}, fmt.Errorf("kubetest: %w", err)
		}
	}
	return ca.issue(certSpec{commonName: "kubetest-admin", organization: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth}, now)
}

// waitAPIServer waits for /readyz, then for the "default" namespace, which
// a controller inside the server creates a moment after it is ready and
// which tests may use at once.
func (e *Env) waitAPIServer(ctx context.Context) error {
	rc := e.Client.Discovery().RESTClient()
	err := e.poll(ctx, "kube-apiserver /readyz", func(ctx context.Context) error {
		_, err := rc.Get().AbsPath("/readyz").Do(ctx).Raw()
		return err
	})
	if err != nil {
		return err
	}
	return e.poll(ctx, `namespace "default"`, func(ctx context.Context) error {
		_, err := e.Client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
		return err
	})
}

// poll calls check until it succeeds, ctx ends, or a process exits.
func (e *Env) poll(ctx context.Context, what string, check func(context.Context) error) error {
	var last error
	for {
		for _, p := range e.procs {
			if done, err := p.exited(); done {
				return e.exitError(p, err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		var perm permanent
		if errors.As(last, &perm) {
			return perm.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubetest: waiting for %s: %w (last error: %w)\n%s", what, ctx.Err(), last, e.Logs(20))
		case <-time.After(pollInterval):
		}
	}
}

func (e *Env) exitError(p *process, exit error) error {
	log := p.tail(30)
	err := fmt.Errorf("kubetest: %s exited early (%v); last lines of %s:\n%s", p.name, exit, p.logPath, log)
	if strings.Contains(log, "address already in use") {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

// Logs returns the last n lines of each process's log, for a failure
// report.
func (e *Env) Logs(n int) string {
	var b bytes.Buffer
	for _, p := range e.procs {
		fmt.Fprintf(&b, "--- %s (%s):\n%s\n", p.name, p.logPath, p.tail(n))
	}
	return b.String()
}

// Stop ends both processes, the API server first, and removes Dir. It is
// safe to call more than once.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		var errs []error
		for i := len(e.procs) - 1; i >= 0; i-- {
			errs = append(errs, e.procs[i].stop(stopGrace))
		}
		e.spawner.close()
		if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, fmt.Errorf("kubetest: %w", err))
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// UserConfig returns a configuration that authenticates as user in groups,
// with a client certificate from the environment's CA, for checking what
// RBAC lets a component do.
func (e *Env) UserConfig(user string, groups ...string) (*rest.Config, error) {
	kp, err := e.ca.issue(certSpec{commonName: user, organization: groups, usage: x509.ExtKeyUsageClientAuth}, time.Now())
	if err != nil {
		return nil, err
	}
	c := rest.CopyConfig(e.Config)
	c.CertData, c.KeyData = kp.certPEM, kp.keyPEM
	return c, nil
}

// UserKubeconfig writes a kubeconfig for user in groups (see UserConfig)
// into the environment's directory, for a process that must run with only
// that user's permissions, and returns its path.
func (e *Env) UserKubeconfig(user string, groups ...string) (string, error) {
	c, err := e.UserConfig(user, groups...)
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.Dir, "kubeconfig-"+strings.NewReplacer("/", "_", ":", "_").Replace(user))
	return path, writeKubeconfig(path, c)
}

func writeKubeconfig(path string, c *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["kubetest-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest-admin", Namespace: metav1.NamespaceDefault}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("kubetest: kubeconfig: %w", err)
	}
	return nil
}

// freePort finds a TCP port free on addr. Another process may take it
// before ours binds it: Run retries on that.
func freePort(addr netip.Addr) (netip.AddrPort, error) {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("kubetest: no free port on %s: %w", addr, err)
	}
	defer ln.Close()
	return netip.AddrPortFrom(addr, uint16(ln.Addr().(*net.TCPAddr).Port)), nil
}
