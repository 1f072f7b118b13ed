// Package controlplane runs a real Kubernetes control plane, etcd and
// kube-apiserver built by hack/k8sbin.sh, for `bgplb lab` and, through
// package kubetest, for integration tests. Run starts one and returns its
// client configuration; InstallCRDs installs definitions into it.
//
// Each control plane gets a fresh temporary directory (etcd data, the
// generated PKI, logs, a kubeconfig), free ports, and its own throwaway
// certificate authority. Clients authenticate with a client certificate of
// an admin in system:masters; RBAC is on, so UserConfig can stand in for
// any other user. With Options.Controllers, kube-controller-manager and
// kube-scheduler run too; never a kubelet or kube-proxy, so pods stay
// Pending.
//
// The processes are package proc's children: they get SIGKILL if the
// process that started them dies, so they never outlive it.
package controlplane

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

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bgplb/bgplb/internal/proc"
)

// Server is a running control plane. Its fields are set by Run and not
// changed after; its methods are safe for concurrent use.
type Server struct {
	// Config reaches the API server as an admin (group system:masters),
	// with no client-side rate limit: the server's own flow control is what
	// tests and the lab should meet.
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

	opts  Options
	ca    *authority
	procs []*proc.Proc  // in start order: etcd, kube-apiserver, then the controllers'
	done  chan struct{} // closed once any of procs has exited
	ended sync.Once     // closes done

	stopOnce sync.Once
	stopErr  error
}

// errPortTaken marks a start that lost the race for a free port to another
// process; Run retries it with new ports.
var errPortTaken = errors.New("port taken")

const (
	startAttempts = 3
	pollInterval  = 50 * time.Millisecond
)

// Run starts etcd and kube-apiserver and waits until the API server is
// ready. ctx bounds the start-up only: the processes run until Stop, which
// the caller must call (they are also killed if this process dies).
func Run(ctx context.Context, o Options) (*Server, error) {
	o, err := withDefaults(o)
	if err != nil {
		return nil, err
	}
	if o.BinDir == "" {
		if o.BinDir, err = BinDir(); err != nil {
			return nil, err
		}
	}
	if o.Controllers {
		if err := checkControllerBins(o.BinDir); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		s, err := start(ctx, o)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == startAttempts {
			return s, err
		}
		o.Logger.Info("controlplane: port taken meanwhile, retrying", "attempt", attempt, "err", err)
	}
}

func start(ctx context.Context, o Options) (s *Server, err error) {
	began := time.Now()
	dir, err := os.MkdirTemp(o.Dir, "controlplane-")
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	s = &Server{Dir: dir, opts: o, done: make(chan struct{})}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
			s = nil
		}
	}()
	etcdURL, err := s.startEtcd(ctx)
	if err != nil {
		return s, err
	}
	o.Logger.Info("controlplane: etcd ready", "url", etcdURL, "after", time.Since(began))
	if err := s.startAPIServer(etcdURL); err != nil {
		return s, err
	}
	if err := s.waitAPIServer(ctx); err != nil {
		return s, err
	}
	o.Logger.Info("controlplane: kube-apiserver ready", "addr", s.Addr, "after", time.Since(began), "dir", dir)
	if !o.Controllers {
		return s, nil
	}
	if err := s.startControllers(ctx); err != nil {
		return s, err
	}
	o.Logger.Info("controlplane: controllers ready", "after", time.Since(began))
	return s, nil
}

func (s *Server) startEtcd(ctx context.Context) (string, error) {
	dir := filepath.Join(s.Dir, "etcd")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("controlplane: %w", err)
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
	if err := s.startProcess(etcdBin, dir, etcdArgs(dir, client, peer)); err != nil {
		return "", err
	}
	url := "http://" + client.String()
	hc := &http.Client{Timeout: time.Second}
	err = s.Poll(ctx, "etcd /health", func(ctx context.Context) error {
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
func (s *Server) startAPIServer(etcdURL string) error {
	dir := filepath.Join(s.Dir, "kube-apiserver")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	addr, err := freePort(s.opts.BindAddress)
	if err != nil {
		return err
	}
	s.Addr = netip.AddrPortFrom(s.opts.clientAddress(), addr.Port())
	files := newAPIServerFiles(dir)
	admin, err := s.writePKI(files)
	if err != nil {
		return err
	}
	s.Config = &rest.Config{
		Host: "https://" + s.Addr.String(),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   s.ca.certPEM,
			CertData: admin.certPEM,
			KeyData:  admin.keyPEM,
		},
		QPS: -1, // see the field's comment
	}
	if s.Client, err = kubernetes.NewForConfig(s.Config); err != nil {
		return fmt.Errorf("controlplane: client: %w", err)
	}
	s.Kubeconfig = filepath.Join(s.Dir, "kubeconfig")
	if err := writeKubeconfig(s.Kubeconfig, s.Config); err != nil {
		return err
	}
	args := apiServerArgs(s.opts, files, addr.Port(), etcdURL)
	return s.startProcess(apiServerBin, dir, args)
}

// writePKI makes the CA, the serving certificate and the service-account
// key for the server, and returns the admin's client certificate.
func (s *Server) writePKI(f apiServerFiles) (keyPair, error) {
	now := time.Now()
	ca, err := newAuthority(now)
	if err != nil {
		return keyPair{}, err
	}
	s.ca = ca
	ips, dns := s.opts.servingSANs()
	serving, err := ca.issue(certSpec{commonName: "kube-apiserver", ips: ips, dnsNames: dns, usage: x509.ExtKeyUsageServerAuth}, now)
	if err != nil {
		return keyPair{}, err
	}
	saKey, saPub, err := newSigningKey()
	if err != nil {
		return keyPair{}, err
	}
	files := map[string][]byte{
		f.caCert: ca.certPEM, f.servingCert: serving.certPEM, f.key: serving.keyPEM,
		f.saSigningKey: saKey, f.saPublicKey: saPub,
	}
	if s.opts.Controllers {
		// kubeadm's apiserver-kubelet-client: the kubelet authorizes it by
		// its group.
		kc, err := ca.issue(certSpec{commonName: "kube-apiserver-kubelet-client", organization: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth}, now)
		if err != nil {
			return keyPair{}, err
		}
		files[f.kubeletCert], files[f.kubeletKey] = kc.certPEM, kc.keyPEM
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return keyPair{}, fmt.Errorf("controlplane: %w", err)
		}
	}
	return ca.issue(certSpec{commonName: "bgplb-admin", organization: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth}, now)
}

// waitAPIServer waits for /readyz, then for the "default" namespace, which
// a controller inside the server creates a moment after it is ready and
// which tests may use at once.
func (s *Server) waitAPIServer(ctx context.Context) error {
	rc := s.Client.Discovery().RESTClient()
	err := s.Poll(ctx, "kube-apiserver /readyz", func(ctx context.Context) error {
		_, err := rc.Get().AbsPath("/readyz").Do(ctx).Raw()
		return err
	})
	if err != nil {
		return err
	}
	return s.Poll(ctx, `namespace "default"`, func(ctx context.Context) error {
		_, err := s.Client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
		return err
	})
}

// startProcess starts one of the programs, in dir, its log there.
func (s *Server) startProcess(bin, dir string, args []string) error {
	p, err := proc.Start(proc.Options{
		Label: bin, Dir: dir, LogPath: filepath.Join(dir, bin+".log"), StopTimeout: stopGrace,
	}, filepath.Join(s.opts.BinDir, bin), args...)
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	s.procs = append(s.procs, p)
	go func() {
		<-p.Done()
		s.ended.Do(func() { close(s.done) })
	}()
	return nil
}

// stopGrace is how long a process may take to end after SIGTERM.
const stopGrace = 5 * time.Second

// Done is closed once any of the processes has ended, on its own or by
// Stop: a long-running user (`bgplb lab control-plane`) ends with it.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err says which process has ended, with the last lines of its log; nil
// while all run.
func (s *Server) Err() error {
	for _, p := range s.procs {
		if done, err := p.Exited(); done {
			return s.exitError(p, err)
		}
	}
	return nil
}

// Poll calls check until it succeeds, ctx ends, or a process of the
// control plane exits (then it fails at once, with that process's log).
// Each call of check gets 2 s.
func (s *Server) Poll(ctx context.Context, what string, check func(context.Context) error) error {
	var last error
	for {
		if err := s.Err(); err != nil {
			return err
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
			return fmt.Errorf("controlplane: waiting for %s: %w (last error: %w)\n%s", what, ctx.Err(), last, s.Logs(20))
		case <-time.After(pollInterval):
		}
	}
}

func (s *Server) exitError(p *proc.Proc, exit error) error {
	log := p.Tail(30)
	err := fmt.Errorf("controlplane: %s exited early (%v); last lines of %s:\n%s", p.Label, exit, p.LogPath, log)
	if strings.Contains(log, "address already in use") {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

// Logs returns the last n lines of each process's log, for a failure
// report.
func (s *Server) Logs(n int) string {
	var b bytes.Buffer
	for _, p := range s.procs {
		fmt.Fprintf(&b, "--- %s (%s):\n%s\n", p.Label, p.LogPath, p.Tail(n))
	}
	return b.String()
}

// Stop ends the processes in reverse start order (etcd last), and removes Dir. It is
// safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		for i := len(s.procs) - 1; i >= 0; i-- {
			if err := s.procs[i].Stop(); err != nil && !errors.Is(err, proc.ErrExited) {
				errs = append(errs, err)
			}
		}
		if err := os.RemoveAll(s.Dir); err != nil {
			errs = append(errs, fmt.Errorf("controlplane: %w", err))
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// UserConfig returns a configuration that authenticates as user in groups,
// with a client certificate from the environment's CA, for checking what
// RBAC lets a component do.
func (s *Server) UserConfig(user string, groups ...string) (*rest.Config, error) {
	kp, err := s.ca.issue(certSpec{commonName: user, organization: groups, usage: x509.ExtKeyUsageClientAuth}, time.Now())
	if err != nil {
		return nil, err
	}
	c := rest.CopyConfig(s.Config)
	c.CertData, c.KeyData = kp.certPEM, kp.keyPEM
	return c, nil
}

// UserKubeconfig writes a kubeconfig for user in groups (see UserConfig)
// into the environment's directory, for a process that must run with only
// that user's permissions, and returns its path.
func (s *Server) UserKubeconfig(user string, groups ...string) (string, error) {
	c, err := s.UserConfig(user, groups...)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.Dir, "kubeconfig-"+strings.NewReplacer("/", "_", ":", "_").Replace(user))
	return path, writeKubeconfig(path, c)
}

// NodeKubeconfig writes a kubeconfig for the kubelet of node name: the
// identity the Node authorizer and NodeRestriction expect
// (system:node:NAME in system:nodes).
func (s *Server) NodeKubeconfig(name string) (string, error) {
	return s.UserKubeconfig("system:node:"+name, "system:nodes")
}

// ProxyKubeconfig writes a kubeconfig for kube-proxy: the user the
// built-in system:node-proxier binding names.
func (s *Server) ProxyKubeconfig() (string, error) {
	return s.UserKubeconfig("system:kube-proxy")
}

// CACertFile is the cluster CA's certificate: what kubelets trust for the
// API server and use to verify client certificates of their own.
func (s *Server) CACertFile() string {
	return newAPIServerFiles(filepath.Join(s.Dir, apiServerBin)).caCert
}

func writeKubeconfig(path string, c *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["bgplb"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["bgplb-user"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData}
	kc.Contexts["bgplb"] = &clientcmdapi.Context{Cluster: "bgplb", AuthInfo: "bgplb-user", Namespace: metav1.NamespaceDefault}
	kc.CurrentContext = "bgplb"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("controlplane: kubeconfig: %w", err)
	}
	return nil
}

// freePort finds a TCP port free on addr. Another process may take it
// before ours binds it: Run retries on that.
func freePort(addr netip.Addr) (netip.AddrPort, error) {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("controlplane: no free port on %s: %w", addr, err)
	}
	defer ln.Close()
	return netip.AddrPortFrom(addr, uint16(ln.Addr().(*net.TCPAddr).Port)), nil
}

// ServiceAccountToken asks the TokenRequest API for a token of the
// ServiceAccount ns/name valid for an hour, as the kubelet projects into a
// pod: components run with exactly the rights their manifests bind.
func (s *Server) ServiceAccountToken(ctx context.Context, ns, name string) (string, error) {
	exp := int64(3600)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}
	tr, err := s.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("controlplane: token for %s/%s: %w", ns, name, err)
	}
	return tr.Status.Token, nil
}

// ServiceAccountKubeconfig writes a kubeconfig that authenticates with a
// ServiceAccountToken, its namespace the ServiceAccount's, under dir.
func (s *Server) ServiceAccountKubeconfig(ctx context.Context, dir, ns, name string) (string, error) {
	tok, err := s.ServiceAccountToken(ctx, ns, name)
	if err != nil {
		return "", err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["bgplb"] = &clientcmdapi.Cluster{Server: s.Config.Host, CertificateAuthorityData: s.Config.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tok}
	kc.Contexts["bgplb"] = &clientcmdapi.Context{Cluster: "bgplb", AuthInfo: name, Namespace: ns}
	kc.CurrentContext = "bgplb"
	path := filepath.Join(dir, "kubeconfig-"+ns+"-"+name)
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", fmt.Errorf("controlplane: kubeconfig: %w", err)
	}
	return path, nil
}
