package kubenode

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// cniBinDir is where Debian's containernetworking-plugins installs.
const cniBinDir = "/usr/lib/cni"

// containerdConfig is containerd's TOML (config version 2, containerd 1.6).
// The paths are the built-in ones: inside the node's mount namespace they
// are below Dir. Choices that are not defaults:
//   - restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, and
//     without it every sandbox fails with "can't get final child's PID from
//     pipe: EOF" (runc cannot lower oom_score_adj).
//   - sandbox_image: the pause image imported from an archive; nothing is
//     ever pulled.
//   - the opt plugin's path: its default, /opt/containerd, is outside Dir.
//   - no snapshotters but overlayfs and native, no debug or metrics socket.
func containerdConfig(sandboxImage, cniConfDir string) string {
	q := strconv.Quote
	return fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %s

[ttrpc]
  address = %s

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %s
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %s
    conf_dir = %s
    max_conf_num = 1
`, q(containerdSock), q(containerdSock+".ttrpc"), q(sandboxImage), q(cniBinDir), q(cniConfDir))
}

// cniConflist is the pod network: a bridge with host-local addresses from
// podCIDRs (one range per family), the bridge the pods' default gateway,
// masquerade for traffic leaving the pod ranges, hairpin so a pod reaches
// itself through a Service, and portmap for hostPort. containerd sets up
// each pod's loopback itself, so no loopback configuration is needed.
func cniConflist(bridge string, podCIDRs []netip.Prefix) ([]byte, error) {
	if len(podCIDRs) == 0 {
		return nil, fmt.Errorf("kubenode: no pod CIDR")
	}
	var ranges [][]map[string]string
	for _, p := range podCIDRs {
		if !p.IsValid() || p != p.Masked() {
			return nil, fmt.Errorf("kubenode: pod CIDR %s is not a network prefix", p)
		}
		ranges = append(ranges, []map[string]string{{"subnet": p.String()}})
	}
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "bgplb",
		"plugins": []any{
			map[string]any{
				"type":             "bridge",
				"bridge":           bridge,
				"isGateway":        true,
				"isDefaultGateway": true,
				"ipMasq":           true,
				"hairpinMode":      true,
				"ipam":             map[string]any{"type": "host-local", "ranges": ranges},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// kubeletConfigInput is what the kubelet's configuration depends on.
type kubeletConfigInput struct {
	CgroupRoot string
	CACert     string
	ResolvConf string
}

// kubeletConfig is the KubeletConfiguration. Choices that are not
// defaults, and why:
//   - failCgroupV1 false, cgroupDriver cgroupfs: these machines run cgroup
//     v1 without systemd managing cgroups.
//   - cgroupRoot: every node (of every lab) its own parent, so pods of
//     different nodes never share a cgroup and Remove finds them all.
//   - failSwapOn false: the machine may have swap.
//   - evictionHard tiny and image GC at 100 %: a busy shared disk must not
//     taint the node with DiskPressure or delete the imported images, which
//     cannot be pulled again.
//   - resolvConf our own file: pods never see the machine's resolver.
//   - readOnlyPort 0, no anonymous requests; clients authenticate with a
//     certificate of the cluster's CA (the API server's kubelet client) or
//     a bearer token (TokenReview), and are authorized by the API server
//     (SubjectAccessReview), as in a kubeadm cluster: the Node authorizer
//     lets every kubelet ask both.
//   - healthz on loopback: the node's namespace has its own.
//   - volumePluginDir below the node's /var: the flexvolume prober creates
//     its directory at start, by default /usr/libexec/kubernetes/..., which
//     is the machine's.
func kubeletConfig(in kubeletConfigInput) ([]byte, error) {
	conf := map[string]any{
		"apiVersion":                  "kubelet.config.k8s.io/v1beta1",
		"kind":                        "KubeletConfiguration",
		"failCgroupV1":                false,
		"cgroupDriver":                "cgroupfs",
		"cgroupRoot":                  in.CgroupRoot,
		"failSwapOn":                  false,
		"containerRuntimeEndpoint":    "unix://" + containerdSock,
		"readOnlyPort":                0,
		"healthzBindAddress":          "127.0.0.1",
		"healthzPort":                 10248,
		"resolvConf":                  in.ResolvConf,
		"protectKernelDefaults":       false,
		"volumePluginDir":             kubeletVolumePluginDir,
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"evictionHard": map[string]string{
			"memory.available":  "1Mi",
			"nodefs.available":  "1Mi",
			"nodefs.inodesFree": "1",
			"imagefs.available": "1Mi",
		},
		"authentication": map[string]any{
			"anonymous": map[string]bool{"enabled": false},
			"webhook":   map[string]bool{"enabled": true},
			"x509":      map[string]string{"clientCAFile": in.CACert},
		},
		"authorization": map[string]string{"mode": "Webhook"},
		// The Lease is renewed every quarter of its duration: every second,
		// so that a node controller with a short grace period (the lab's
		// 5 s, to show a failover without waiting 50 s) sees a live node
		// as live.
		"nodeLeaseDurationSeconds": 4,
	}
	return yaml.Marshal(conf)
}

// kubeletVolumePluginDir is the flexvolume plugins' directory as the
// kubelet sees it: Dir/var/lib/kubelet/volume-plugins.
const kubeletVolumePluginDir = "/var/lib/kubelet/volume-plugins"

// kubeletArgs are the kubelet's flags beyond its configuration file.
func kubeletArgs(conf, kubeconfig, name string, nodeIPs []netip.Addr, labels map[string]string) []string {
	args := []string{
		"--config=" + conf,
		"--kubeconfig=" + kubeconfig,
		"--hostname-override=" + name,
		"--v=1",
	}
	if len(nodeIPs) > 0 {
		ips := make([]string, len(nodeIPs))
		for i, a := range nodeIPs {
			ips[i] = a.String()
		}
		args = append(args, "--node-ip="+strings.Join(ips, ","))
	}
	if len(labels) > 0 {
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		kv := make([]string, len(keys))
		for i, k := range keys {
			kv[i] = k + "=" + labels[k]
		}
		args = append(args, "--node-labels="+strings.Join(kv, ","))
	}
	return args
}

// proxyConfig is the KubeProxyConfiguration: iptables mode (chains are per
// network namespace), the node's name, the pod range for detecting local
// traffic, health and metrics on the namespace's loopback. Every conntrack
// setting is 0, "leave the kernel's value": nf_conntrack_max and the
// hash size are global, and the lab must not change the machine.
func proxyConfig(kubeconfig, name string, clusterCIDRs []netip.Prefix) ([]byte, error) {
	cidrs := make([]string, len(clusterCIDRs))
	for i, p := range clusterCIDRs {
		cidrs[i] = p.String()
	}
	conf := map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"mode":               "iptables",
		"hostnameOverride":   name,
		"clusterCIDR":        strings.Join(cidrs, ","),
		"detectLocalMode":    "ClusterCIDR",
		"healthzBindAddress": "127.0.0.1:10256",
		"metricsBindAddress": "127.0.0.1:10249",
		"clientConnection":   map[string]string{"kubeconfig": kubeconfig},
		"conntrack": map[string]any{
			"maxPerCore":            0,
			"min":                   0,
			"tcpEstablishedTimeout": "0s",
			"tcpCloseWaitTimeout":   "0s",
			"udpTimeout":            "0s",
			"udpStreamTimeout":      "0s",
		},
	}
	return yaml.Marshal(conf)
}

// globalSysctls are the machine-wide sysctls the kubelet writes at start
// (setupKernelTunables). Inside the node's mount namespace each is a
// private file bound over its /proc/sys entry, so the kubelet's writes
// land there and the machine keeps its values.
var globalSysctls = []string{
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// sysctlFile is the private copy of a sysctl below the node's directory.
func sysctlFile(sysctlDir, key string) string {
	return sysctlDir + "/" + strings.ReplaceAll(key, "/", ".")
}
