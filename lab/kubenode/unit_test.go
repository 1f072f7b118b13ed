package kubenode

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestContainerdConfig(t *testing.T) {
	c := containerdConfig("docker.io/library/pause:x", "/tmp/n/cni/net.d")
	for _, want := range []string{
		`sandbox_image = "docker.io/library/pause:x"`,
		`restrict_oom_score_adj = true`,
		`SystemdCgroup = false`,
		`bin_dir = "/usr/lib/cni"`,
		`conf_dir = "/tmp/n/cni/net.d"`,
		`address = "/run/containerd/containerd.sock"`,
		`root = "/var/lib/containerd"`,
		`state = "/run/containerd"`,
		`path = "/var/lib/containerd/opt"`,
	} {
		if !strings.Contains(c, want) {
			t.Errorf("containerd config lacks %s:\n%s", want, c)
		}
	}
}

func TestCNIConflist(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cidrs   []string
		wantErr bool
	}{
		{name: "v4", cidrs: []string{"198.18.1.0/24"}},
		{name: "dual", cidrs: []string{"198.18.1.0/24", "2001:db8:1::/64"}},
		{name: "none", wantErr: true},
		{name: "host bits", cidrs: []string{"198.18.1.1/24"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ps []netip.Prefix
			for _, c := range tc.cidrs {
				ps = append(ps, netip.MustParsePrefix(c))
			}
			b, err := cniConflist("cni0", ps)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			var c struct {
				Plugins []struct {
					Type             string `json:"type"`
					Bridge           string `json:"bridge"`
					IsDefaultGateway bool   `json:"isDefaultGateway"`
					IPMasq           bool   `json:"ipMasq"`
					HairpinMode      bool   `json:"hairpinMode"`
					IPAM             struct {
						Type   string                `json:"type"`
						Ranges [][]map[string]string `json:"ranges"`
					} `json:"ipam"`
				} `json:"plugins"`
			}
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			br := c.Plugins[0]
			if br.Type != "bridge" || br.Bridge != "cni0" || !br.IsDefaultGateway || !br.IPMasq || !br.HairpinMode || br.IPAM.Type != "host-local" {
				t.Errorf("bridge plugin: %+v", br)
			}
			var got []string
			for _, r := range br.IPAM.Ranges {
				got = append(got, r[0]["subnet"])
			}
			if !slices.Equal(got, tc.cidrs) {
				t.Errorf("ranges %v, want %v", got, tc.cidrs)
			}
		})
	}
}

func TestKubeletConfig(t *testing.T) {
	b, err := kubeletConfig(kubeletConfigInput{CgroupRoot: "/bgplb-x", CACert: "/d/ca.crt", ResolvConf: "/d/resolv.conf"})
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"failCgroupV1": false, "cgroupDriver": "cgroupfs", "cgroupRoot": "/bgplb-x", "failSwapOn": false,
		"readOnlyPort": float64(0), "resolvConf": "/d/resolv.conf", "healthzBindAddress": "127.0.0.1",
		"containerRuntimeEndpoint":    "unix:///run/containerd/containerd.sock",
		"imageGCHighThresholdPercent": float64(100),
		"nodeLeaseDurationSeconds":    float64(4),
		"volumePluginDir":             "/var/lib/kubelet/volume-plugins",
	} {
		if c[k] != want {
			t.Errorf("%s = %v, want %v", k, c[k], want)
		}
	}
	auth := c["authentication"].(map[string]any)
	if auth["x509"].(map[string]any)["clientCAFile"] != "/d/ca.crt" || auth["anonymous"].(map[string]any)["enabled"] != false {
		t.Errorf("authentication %v", auth)
	}
	if mode := c["authorization"].(map[string]any)["mode"]; mode != "Webhook" {
		t.Errorf("authorization mode %v, want Webhook", mode)
	}
}

func TestKubeletArgs(t *testing.T) {
	got := kubeletArgs("/c.yaml", "/k", "node1",
		[]netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8::11")},
		map[string]string{"b": "2", "a": "1"})
	want := []string{"--config=/c.yaml", "--kubeconfig=/k", "--hostname-override=node1", "--v=1",
		"--node-ip=198.51.100.11,2001:db8::11", "--node-labels=a=1,b=2"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestProxyConfig(t *testing.T) {
	b, err := proxyConfig("/k", "node1", []netip.Prefix{netip.MustParsePrefix("198.18.0.0/16"), netip.MustParsePrefix("2001:db8:18::/56")})
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c["mode"] != "iptables" || c["hostnameOverride"] != "node1" || c["clusterCIDR"] != "198.18.0.0/16,2001:db8:18::/56" {
		t.Errorf("config %v", c)
	}
	ct := c["conntrack"].(map[string]any)
	if ct["maxPerCore"] != float64(0) || ct["tcpEstablishedTimeout"] != "0s" {
		t.Errorf("conntrack %v: nothing global may be written", ct)
	}
}

func TestMountPlanAndScript(t *testing.T) {
	l := layout{Dir: "/tmp/it's"}
	plan := mountPlan(l, []string{"vm/overcommit_memory"})
	want := []bind{
		{"/tmp/it's/run", "/run"},
		{"/tmp/it's/var", "/var"},
		{"/tmp/it's/sysctl/vm.overcommit_memory", "/proc/sys/vm/overcommit_memory"},
	}
	if !slices.Equal(plan, want) {
		t.Fatalf("plan %v, want %v", plan, want)
	}
	s := holderScript(plan, "/run/ready")
	for _, line := range []string{
		`mount --bind '/tmp/it'\''s/run' '/run'`,
		`mount --bind '/tmp/it'\''s/sysctl/vm.overcommit_memory' '/proc/sys/vm/overcommit_memory'`,
		`: > '/run/ready'`,
		`exec sleep infinity`,
	} {
		if !strings.Contains(s, line+"\n") {
			t.Errorf("script lacks %q:\n%s", line, s)
		}
	}
	if !strings.HasPrefix(s, "set -e\n") {
		t.Error("script does not stop at the first failing mount")
	}
}

func TestCheckDir(t *testing.T) {
	for dir, ok := range map[string]bool{
		"/tmp/lab/node1": true, "/root/.cache/x": true, "relative": false, "/": false,
		"/var/lib/bgplb": false, "/run/bgplb": false, "/var": false, "/variable/x": true,
	} {
		if err := checkDir(dir); (err == nil) != ok {
			t.Errorf("checkDir(%q) = %v, want ok %v", dir, err, ok)
		}
	}
}

func TestParseCgroupMounts(t *testing.T) {
	mi := `22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw
`
	got := parseCgroupMounts([]byte(mi))
	want := []cgroupMount{
		{Dir: "/sys/fs/cgroup/cpu"}, {Dir: "/sys/fs/cgroup/cpuset", Cpuset: true},
		{Dir: "/sys/fs/cgroup/systemd"}, {Dir: "/sys/fs/cgroup/unified"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestInCgroups(t *testing.T) {
	got := inCgroups([]string{"/a/cgroup.procs", "/b/cgroup.procs"}, []string{"nsenter", "x"})
	if got[0] != "sh" || got[4] != "/a/cgroup.procs /b/cgroup.procs" || !slices.Equal(got[5:], []string{"nsenter", "x"}) {
		t.Errorf("got %q", got)
	}
}

// The wrapper runs for real, with plain files as cgroup.procs: the program
// runs only once its pid is in every file.
func TestInCgroupsRuns(t *testing.T) {
	dir := t.TempDir()
	ok1, ok2 := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	missing := filepath.Join(dir, "gone", "cgroup.procs")
	for _, tc := range []struct {
		name  string
		files []string
		runs  bool
	}{
		{"all written", []string{ok1, ok2}, true},
		{"first fails", []string{missing, ok1}, false},
		{"last fails", []string{ok1, missing}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := inCgroups(tc.files, []string{"sh", "-c", "echo ran $$"})
			out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
			ran := strings.Contains(string(out), "ran ")
			if ran != tc.runs || (err == nil) != tc.runs {
				t.Fatalf("ran %v (err %v, output %q), want %v", ran, err, out, tc.runs)
			}
			if !tc.runs {
				return
			}
			// exec keeps the pid: the program is the process written.
			pid := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "ran "))
			for _, f := range tc.files {
				if b, err := os.ReadFile(f); err != nil || strings.TrimSpace(string(b)) != pid {
					t.Errorf("%s holds %q (%v), want pid %s", f, b, err, pid)
				}
			}
		})
	}
}

func TestIPTablesCleanup(t *testing.T) {
	save := `# Generated by iptables-save
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
:LAB-OWN - [0:0]
-A INPUT -j LAB-OWN
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
:CNI-abc - [0:0]
-A POSTROUTING -s 198.18.1.2/32 -m comment --comment "name: \"bgplb\" id: \"x\"" -j CNI-abc
-A CNI-abc -d 198.18.1.0/24 -j ACCEPT
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
-A PREROUTING -j MARK --set-mark 1
COMMIT
`
	want := `*filter
-D FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-F KUBE-FORWARD
-X KUBE-FORWARD
COMMIT
*nat
-D POSTROUTING -s 198.18.1.2/32 -m comment --comment "name: \"bgplb\" id: \"x\"" -j CNI-abc
-F CNI-abc
-X CNI-abc
COMMIT
`
	if got := iptablesCleanup(save, ownedChain); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := iptablesCleanup("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", ownedChain); got != "" {
		t.Errorf("nothing owned: got %q", got)
	}
}
