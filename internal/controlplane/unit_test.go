package controlplane

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestBinCandidates(t *testing.T) {
	home := "/home/u"
	def := filepath.Join(home, ".cache/bgplb/k8s", KubernetesVersion)
	tests := []struct {
		name string
		env  map[string]string
		home string
		want []string
	}{
		{"nothing set", nil, home, []string{def}},
		{"no home either", nil, "", nil},
		{"BGPLB_K8S_BIN wins alone", map[string]string{"BGPLB_K8S_BIN": "/b", "KUBEBUILDER_ASSETS": "/k", "BGPLB_CACHE": "/c"}, home, []string{"/b"}},
		{"KUBEBUILDER_ASSETS next", map[string]string{"KUBEBUILDER_ASSETS": "/k", "BGPLB_CACHE": "/c"}, home, []string{"/k"}},
		{"BGPLB_CACHE before home", map[string]string{"BGPLB_CACHE": "/c"}, home, []string{"/c/k8s/" + KubernetesVersion, def}},
		{"BGPLB_CACHE equal to the default", map[string]string{"BGPLB_CACHE": home + "/.cache/bgplb"}, home, []string{def}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range binCandidates(func(k string) string { return tt.env[k] }, tt.home) {
				got = append(got, c.dir)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFindBinDir(t *testing.T) {
	has := func(paths ...string) func(string) bool {
		return func(p string) bool { return slices.Contains(paths, p) }
	}
	both := has("/a/etcd", "/a/kube-apiserver", "/b/etcd", "/b/kube-apiserver")
	named := []binCandidate{{dir: "/x", source: "$BGPLB_K8S_BIN", named: true}}
	tests := []struct {
		name     string
		cands    []binCandidate
		exists   func(string) bool
		want     string
		noBins   bool   // the error wraps ErrNoBinaries
		errMatch string // the error says this
	}{
		{"first complete", []binCandidate{{dir: "/a"}, {dir: "/b"}}, both, "/a", false, ""},
		{"skips incomplete", []binCandidate{{dir: "/a"}, {dir: "/b"}}, has("/a/etcd", "/b/etcd", "/b/kube-apiserver"), "/b", false, ""},
		{"none", []binCandidate{{dir: "/a"}}, has(), "", true, "looked in /a"},
		{"named but empty is not ErrNoBinaries", named, has("/x/etcd"), "", false, "BGPLB_K8S_BIN=/x has no executable kube-apiserver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findBinDir(tt.cands, tt.exists)
			if got != tt.want {
				t.Errorf("dir %q, want %q", got, tt.want)
			}
			if (err != nil) != (tt.errMatch != "") || (err != nil && !strings.Contains(err.Error(), tt.errMatch)) {
				t.Errorf("error %v, want one saying %q", err, tt.errMatch)
			}
			if errors.Is(err, ErrNoBinaries) != tt.noBins {
				t.Errorf("error %v: wraps ErrNoBinaries = %v, want %v", err, !tt.noBins, tt.noBins)
			}
		})
	}
}

// TestVersionMatchesModule keeps KubernetesVersion, which names the cache
// directory, equal to what hack/k8sbin builds.
func TestVersionMatchesModule(t *testing.T) {
	b, err := os.ReadFile("../../hack/k8sbin/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/kubernetes (v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("hack/k8sbin/go.mod does not require k8s.io/kubernetes")
	}
	if string(m[1]) != KubernetesVersion {
		t.Errorf("hack/k8sbin/go.mod pins %s, KubernetesVersion is %s", m[1], KubernetesVersion)
	}
}

func TestWithDefaults(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name                 string
		in                   Options
		bind, adv, client    string
		err                  string
		wantDefaultServiceIP bool
	}{
		{name: "zero", bind: "127.0.0.1", adv: "127.0.0.1", client: "127.0.0.1", wantDefaultServiceIP: true},
		{name: "bind only", in: Options{BindAddress: a("198.51.100.1")}, bind: "198.51.100.1", adv: "198.51.100.1", client: "198.51.100.1"},
		{name: "mapped v4 unmapped", in: Options{BindAddress: a("::ffff:127.0.0.2")}, bind: "127.0.0.2", adv: "127.0.0.2", client: "127.0.0.2"},
		{name: "unspecified v4", in: Options{BindAddress: a("0.0.0.0")}, bind: "0.0.0.0", adv: "127.0.0.1", client: "127.0.0.1"},
		{name: "unspecified v6", in: Options{BindAddress: a("::")}, bind: "::", adv: "::1", client: "::1"},
		{name: "unspecified with advertise", in: Options{BindAddress: a("::"), AdvertiseAddress: a("2001:db8::1")}, bind: "::", adv: "2001:db8::1", client: "2001:db8::1"},
		{name: "bind and advertise differ", in: Options{BindAddress: a("127.0.0.2"), AdvertiseAddress: a("198.51.100.1")}, bind: "127.0.0.2", adv: "198.51.100.1", client: "127.0.0.2"},
		{name: "advertise unspecified", in: Options{AdvertiseAddress: a("0.0.0.0")}, err: "unspecified"},
		{name: "zone", in: Options{BindAddress: a("fe80::1%lo")}, err: "zone"},
		{name: "three CIDRs", in: Options{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::/108")}}, err: "at most one per family"},
		{name: "two v4 CIDRs", in: Options{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("10.1.0.0/16")}}, err: "one family"},
		{name: "host bits", in: Options{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/16")}}, err: "not a network prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := withDefaults(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.BindAddress.String() != tt.bind || got.AdvertiseAddress.String() != tt.adv || got.clientAddress().String() != tt.client {
				t.Errorf("bind %s advertise %s client %s, want %s %s %s", got.BindAddress, got.AdvertiseAddress, got.clientAddress(), tt.bind, tt.adv, tt.client)
			}
			if tt.wantDefaultServiceIP && !slices.Equal(got.ServiceCIDRs, DefaultServiceCIDRs()) {
				t.Errorf("service CIDRs %v", got.ServiceCIDRs)
			}
			if got.StartTimeout != defaultStartTimeout || got.Logger == nil {
				t.Errorf("timeout %v logger %v not defaulted", got.StartTimeout, got.Logger)
			}
		})
	}
}

func TestServingSANs(t *testing.T) {
	o, err := withDefaults(Options{
		BindAddress:      netip.MustParseAddr("198.51.100.1"),
		AdvertiseAddress: netip.MustParseAddr("198.51.100.1"),
		ExtraSANs:        []netip.Addr{netip.MustParseAddr("2001:db8::5")},
	})
	if err != nil {
		t.Fatal(err)
	}
	ips, dns := o.servingSANs()
	want := []string{"10.96.0.1", "127.0.0.1", "198.51.100.1", "::1", "2001:db8::5", "2001:db8:ffff:96::1"}
	var got []string
	for _, ip := range ips {
		got = append(got, ip.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("IP SANs %v, want %v (sorted, no duplicates)", got, want)
	}
	if !slices.Contains(dns, "kubernetes.default.svc") || !slices.Contains(dns, "localhost") {
		t.Errorf("DNS SANs %v", dns)
	}
}

func TestAPIServerArgs(t *testing.T) {
	o, err := withDefaults(Options{
		BindAddress:    netip.MustParseAddr("::"),
		APIServerFlags: []string{"--v=4", "--authorization-mode=AlwaysAllow"},
	})
	if err != nil {
		t.Fatal(err)
	}
	args := apiServerArgs(o, newAPIServerFiles("/d"), 6443, "http://127.0.0.1:2379")
	for _, want := range []string{
		"--bind-address=::",
		"--advertise-address=::1",
		"--secure-port=6443",
		"--etcd-servers=http://127.0.0.1:2379",
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.96.0.0/16,2001:db8:ffff:96::/108",
		"--client-ca-file=/d/ca.crt",
		"--service-account-signing-key-file=/d/sa.key",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("missing %s in %v", want, args)
		}
	}
	// The caller's flags come last, so that they override ours.
	if n := len(args); args[n-2] != "--v=4" || args[n-1] != "--authorization-mode=AlwaysAllow" {
		t.Errorf("extra flags not last: %v", args[n-2:])
	}
}

// With Controllers the server is a cluster kubelets can join; without, it
// stores objects and refuses nothing for want of a controller.
func TestAPIServerArgsControllers(t *testing.T) {
	for _, tc := range []struct {
		name        string
		o           Options
		want, avoid []string
	}{
		{"store only", Options{},
			[]string{"--endpoint-reconciler-type=none", "--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount"},
			[]string{"--enable-admission-plugins=NodeRestriction", "--kubelet-client-certificate=/d/kubelet-client.crt"}},
		{"cluster on an API link", Options{Controllers: true, BindAddress: netip.MustParseAddr("198.51.100.65")},
			[]string{"--endpoint-reconciler-type=lease", "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
				"--kubelet-client-certificate=/d/kubelet-client.crt", "--kubelet-client-key=/d/kubelet-client.key"},
			[]string{"--disable-admission-plugins=ServiceAccount", "--endpoint-reconciler-type=none"}},
		{"cluster on loopback", Options{Controllers: true},
			[]string{"--endpoint-reconciler-type=none", "--authorization-mode=Node,RBAC"},
			[]string{"--endpoint-reconciler-type=lease", "--disable-admission-plugins=ServiceAccount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := withDefaults(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			args := apiServerArgs(o, newAPIServerFiles("/d"), 6443, "http://127.0.0.1:2379")
			for _, w := range tc.want {
				if !slices.Contains(args, w) {
					t.Errorf("missing %s in %v", w, args)
				}
			}
			for _, a := range tc.avoid {
				if slices.Contains(args, a) {
					t.Errorf("unexpected %s in %v", a, args)
				}
			}
		})
	}
}

func TestEtcdArgs(t *testing.T) {
	args := etcdArgs("/e", netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"))
	for _, want := range []string{
		"--data-dir=/e/data",
		"--listen-client-urls=http://127.0.0.1:1",
		"--listen-peer-urls=http://127.0.0.1:2",
		"--initial-cluster=bgplb=http://127.0.0.1:2",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("missing %s in %v", want, args)
		}
	}
}

func TestDecodeCRDs(t *testing.T) {
	crd := func(name string) string {
		return "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: " + name + "\n"
	}
	tests := []struct {
		name, in  string
		wantNames []string
		err       string
	}{
		{"one", crd("a.example.com"), []string{"a.example.com"}, ""},
		{"two with empty documents", "---\n" + crd("a.x") + "---\n---\n" + crd("b.x"), []string{"a.x", "b.x"}, ""},
		{"json", `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"j.x"}}`, []string{"j.x"}, ""},
		{"empty file", "", nil, ""},
		{"other kind", crd("a.x") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n", nil, "document 2 is /v1, Kind=ConfigMap \"c\""},
		{"old version", "apiVersion: apiextensions.k8s.io/v1beta1\nkind: CustomResourceDefinition\nmetadata:\n  name: a.x\n", nil, "not an apiextensions.k8s.io/v1"},
		{"no name", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n", nil, "without metadata.name"},
		{"bad yaml", "a: [b\n", nil, "f.yaml: document 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeCRDs("f.yaml", strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, u := range got {
				names = append(names, u.GetName())
			}
			if !slices.Equal(names, tt.wantNames) {
				t.Errorf("names %v, want %v", names, tt.wantNames)
			}
		})
	}
}

func TestCRDConditions(t *testing.T) {
	cond := func(typ, status string) any {
		return map[string]any{"type": typ, "status": status, "reason": "R", "message": "M"}
	}
	tests := []struct {
		name        string
		conds       []any
		established bool
		refused     bool
	}{
		{"no status", nil, false, false},
		{"established", []any{cond("NamesAccepted", "True"), cond("Established", "True")}, true, false},
		{"not yet", []any{cond("NamesAccepted", "True"), cond("Established", "False")}, false, false},
		{"names refused", []any{cond("NamesAccepted", "False"), cond("Established", "False")}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{}}
			if tt.conds != nil {
				u.Object["status"] = map[string]any{"conditions": tt.conds}
			}
			est, refused := crdConditions(u)
			if est != tt.established || (refused != "") != tt.refused {
				t.Errorf("established %v refused %q, want %v %v", est, refused, tt.established, tt.refused)
			}
		})
	}
}

// TestChildDiesWithProcess proves the claim in spawner's comment: a child
// left running when its test binary dies is killed. The test runs itself
// again as a helper that starts a child and exits without stopping it.
// sleepAlive reports whether pid is still our `sleep 60` and not a zombie.
// fakeTB records how skipOrFail ended a test; Skipf and Fatalf stop the
// calling goroutine as the real ones do (by panicking here).

// The controller manager keeps to its directory: its FlexVolume prober
// would otherwise create /usr/libexec/kubernetes on the machine.
func TestControllerManagerArgs(t *testing.T) {
	args := controllerManagerArgs(controllerFiles{kubeconfig: "/k/kubeconfig", flexDir: "/k/volume-plugins"})
	if !slices.Contains(args, "--flex-volume-plugin-dir=/k/volume-plugins") {
		t.Errorf("no --flex-volume-plugin-dir in the manager's own directory: %v", args)
	}
}
