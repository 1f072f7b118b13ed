package controlplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options configure a control plane. The zero value is a working default:
// an API server on 127.0.0.1, dual-stack Services.
type Options struct {
	// BinDir holds etcd and kube-apiserver; empty means BinDir().
	BinDir string
	// BindAddress is where the API server listens, on a free port. Zero
	// means 127.0.0.1. To serve processes in other network namespaces, give
	// an address they can route to (say 198.51.100.1 on a veth), or an
	// unspecified address (0.0.0.0, ::) together with AdvertiseAddress.
	BindAddress netip.Addr
	// AdvertiseAddress is the address the server announces as its own, and
	// the one clients use when BindAddress is unspecified. Zero means
	// BindAddress, or loopback when that is unspecified.
	AdvertiseAddress netip.Addr
	// ExtraSANs are more addresses the serving certificate covers, beyond
	// the bind and advertise addresses and loopback.
	ExtraSANs []netip.Addr
	// ServiceCIDRs are the ClusterIP ranges, one per family, primary first.
	// Zero means DefaultServiceCIDRs (dual-stack, so that tests can ask for
	// RequireDualStack Services).
	ServiceCIDRs []netip.Prefix
	// APIServerFlags are appended after the harness's own flags; a repeated
	// flag takes the last value, so these override.
	APIServerFlags []string
	// Controllers also runs kube-controller-manager and kube-scheduler (from
	// BinDir), so that namespaces finalize, garbage is collected, workloads
	// roll and pods are scheduled; Run then also waits for the controller
	// manager to act. Off, the API server stores objects and nothing acts
	// on them, which is all most tests need and starts faster.
	Controllers bool
	// ControllerManagerFlags are appended to kube-controller-manager's
	// flags (with Controllers), as APIServerFlags are to the API server's:
	// the lab shortens --node-monitor-grace-period so that a cut-off node
	// goes NotReady in seconds.
	ControllerManagerFlags []string
	// Dir is where the environment's temporary directory is made; empty
	// means os.TempDir().
	Dir string
	// StartTimeout bounds the start-up, on top of the caller's context.
	// Zero means 90 s (a cold start on a loaded 2-core machine).
	StartTimeout time.Duration
	// Logger receives start-up and shutdown progress; nil discards it.
	Logger *slog.Logger
}

// DefaultServiceCIDRs are the ClusterIP ranges used when Options leave them
// out. IPv4 cannot come from the documentation blocks: they are /24s, and
// a benchmark with 10,000 LoadBalancer Services needs a ClusterIP for each.
// Here ClusterIPs are bookkeeping inside the API server (nothing runs
// kube-proxy), so 10.96.0.0/16 is never configured on any interface.
func DefaultServiceCIDRs() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("10.96.0.0/16"),
		netip.MustParsePrefix("2001:db8:ffff:96::/108"),
	}
}

const defaultStartTimeout = 90 * time.Second

// withDefaults fills in the zero fields and rejects what kube-apiserver
// would refuse later with a less direct message.
func withDefaults(o Options) (Options, error) {
	if !o.BindAddress.IsValid() {
		o.BindAddress = netip.MustParseAddr("127.0.0.1")
	}
	if o.BindAddress.Zone() != "" || o.AdvertiseAddress.Zone() != "" {
		return o, errors.New("controlplane: addresses with a zone are not supported")
	}
	o.BindAddress = o.BindAddress.Unmap()
	if !o.AdvertiseAddress.IsValid() {
		o.AdvertiseAddress = o.BindAddress
		if o.BindAddress.IsUnspecified() {
			o.AdvertiseAddress = netip.IPv6Loopback()
			if o.BindAddress.Is4() {
				o.AdvertiseAddress = netip.MustParseAddr("127.0.0.1")
			}
		}
	}
	o.AdvertiseAddress = o.AdvertiseAddress.Unmap()
	if o.AdvertiseAddress.IsUnspecified() {
		return o, fmt.Errorf("controlplane: advertise address %s is unspecified", o.AdvertiseAddress)
	}
	if len(o.ServiceCIDRs) == 0 {
		o.ServiceCIDRs = DefaultServiceCIDRs()
	}
	if err := checkServiceCIDRs(o.ServiceCIDRs); err != nil {
		return o, err
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = defaultStartTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

func checkServiceCIDRs(ps []netip.Prefix) error {
	if len(ps) > 2 {
		return fmt.Errorf("controlplane: %d service CIDRs; at most one per family", len(ps))
	}
	for _, p := range ps {
		if !p.IsValid() || p != p.Masked() {
			return fmt.Errorf("controlplane: service CIDR %s is not a network prefix", p)
		}
	}
	if len(ps) == 2 && ps[0].Addr().Is4() == ps[1].Addr().Is4() {
		return fmt.Errorf("controlplane: service CIDRs %s and %s are of one family", ps[0], ps[1])
	}
	return nil
}

// clientAddress is where clients reach the API server.
func (o Options) clientAddress() netip.Addr {
	if o.BindAddress.IsUnspecified() {
		return o.AdvertiseAddress
	}
	return o.BindAddress
}

// servingSANs lists what the serving certificate must cover: every address
// a client may dial, and the in-cluster names and ClusterIP of the
// `kubernetes` Service, so that a pod-style client verifies it too.
func (o Options) servingSANs() ([]netip.Addr, []string) {
	ips := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback(), o.AdvertiseAddress}
	if !o.BindAddress.IsUnspecified() {
		ips = append(ips, o.BindAddress)
	}
	ips = append(ips, o.ExtraSANs...)
	for _, p := range o.ServiceCIDRs {
		ips = append(ips, p.Addr().Next())
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	ips = slices.Compact(ips)
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	return ips, dns
}

// etcdArgs are etcd's flags: one member on loopback, data in dir, no fsync
// (the data dies with the test), warnings only.
func etcdArgs(dir string, client, peer netip.AddrPort) []string {
	c := "http://" + client.String()
	p := "http://" + peer.String()
	return []string{
		"--name=bgplb",
		"--data-dir=" + filepath.Join(dir, "data"),
		"--listen-client-urls=" + c,
		"--advertise-client-urls=" + c,
		"--listen-peer-urls=" + p,
		"--initial-advertise-peer-urls=" + p,
		"--initial-cluster=bgplb=" + p,
		"--initial-cluster-state=new",
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	}
}

// apiServerFiles are the paths of the files kube-apiserver reads.
type apiServerFiles struct {
	dir                       string
	caCert, servingCert, key  string
	saSigningKey, saPublicKey string
	// kubeletCert and kubeletKey are the server's client certificate
	// towards kubelets (logs, exec), written only with Controllers.
	kubeletCert, kubeletKey string
}

func newAPIServerFiles(dir string) apiServerFiles {
	return apiServerFiles{
		dir:          dir,
		caCert:       filepath.Join(dir, "ca.crt"),
		servingCert:  filepath.Join(dir, "serving.crt"),
		key:          filepath.Join(dir, "serving.key"),
		saSigningKey: filepath.Join(dir, "sa.key"),
		saPublicKey:  filepath.Join(dir, "sa.pub"),
		kubeletCert:  filepath.Join(dir, "kubelet-client.crt"),
		kubeletKey:   filepath.Join(dir, "kubelet-client.key"),
	}
}

// apiServerArgs are kube-apiserver's flags. Choices that are not defaults:
//   - --advertise-address given: otherwise the server picks the host's
//     default-route address, which may not exist in a bare CI container.
//   - RBAC authorization, with our admin in system:masters, so that tests
//     can check a component's ClusterRole with Server.UserConfig.
//
// Without Controllers the server only stores objects:
//   - --endpoint-reconciler-type=none: nothing in the environment reaches
//     the `kubernetes` Service, and the default "lease" reconciler refuses
//     loopback as its endpoint and logs errors forever.
//   - ServiceAccount admission off: no controller-manager creates each
//     namespace's "default" ServiceAccount, and the plugin would refuse
//     every Pod without it.
//
// With Controllers it is a cluster that kubelets join, configured as
// kubeadm configures one:
//   - the Node authorizer before RBAC, and NodeRestriction admission: a
//     kubelet (system:node:NAME in system:nodes) may change only its own
//     Node and the Pods bound to it;
//   - ServiceAccount admission on: Pods get their ServiceAccount's token
//     projected, and in-cluster clients (bgplb's own pods) authenticate
//     with it;
//   - the lease endpoint reconciler, so that the `kubernetes` Service
//     leads pods to the advertised address (unless that is loopback,
//     which the reconciler refuses and no pod could reach);
//   - a client certificate towards kubelets, for logs and exec.
func apiServerArgs(o Options, f apiServerFiles, port uint16, etcdURL string) []string {
	cidrs := make([]string, len(o.ServiceCIDRs))
	for i, p := range o.ServiceCIDRs {
		cidrs[i] = p.String()
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + o.BindAddress.String(),
		"--secure-port=" + strconv.Itoa(int(port)),
		"--advertise-address=" + o.AdvertiseAddress.String(),
		"--cert-dir=" + f.dir,
		"--tls-cert-file=" + f.servingCert,
		"--tls-private-key-file=" + f.key,
		"--client-ca-file=" + f.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-signing-key-file=" + f.saSigningKey,
		"--service-account-key-file=" + f.saPublicKey,
		"--service-cluster-ip-range=" + strings.Join(cidrs, ","),
	}
	if o.Controllers {
		reconciler := "lease"
		if o.AdvertiseAddress.IsLoopback() {
			reconciler = "none"
		}
		args = append(args,
			"--endpoint-reconciler-type="+reconciler,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--kubelet-client-certificate="+f.kubeletCert,
			"--kubelet-client-key="+f.kubeletKey,
		)
	} else {
		args = append(args,
			"--endpoint-reconciler-type=none",
			"--authorization-mode=RBAC",
			"--disable-admission-plugins=ServiceAccount",
		)
	}
	args = append(args, "--allow-privileged=true", "--profiling=false")
	return append(args, o.APIServerFlags...)
}
