// Package kubenode turns a lab network namespace into a Kubernetes node:
// containerd (with runc and the CNI plugins of the machine), a kubelet
// registered with a given API server, and kube-proxy, all inside the
// namespace; and removes every trace of it again.
//
// # Shape
//
//   - [Start] makes the node and returns once its daemons run. They are
//     detached (own session, no parent-death signal), because `bgplb lab
//     up` exits and leaves the lab running; [WaitReady] waits for the Node.
//   - [Remove] works from the node's directory alone (its state.json), so
//     `bgplb lab down`, a later test, or a run after a crash or reboot can
//     remove a node it did not start. It is idempotent.
//   - [Node.ImportImage] and [ImportImage] (by directory) import more
//     images (OCI or docker archives) into the node's containerd; nothing
//     is ever pulled. [Ctr] runs `ctr` against it, to see images and
//     containers without crictl.
//   - One node per network namespace: the kubelet's ports (10248, 10250),
//     kube-proxy's (10249, 10256 on loopback) and the bridge cni0 are the
//     namespace's. The namespace needs a route to the ClusterIPs (a
//     default route, as on a LAN), or its own connections to them fail
//     with "network is unreachable" before kube-proxy's DNAT.
//   - The kubelet's API (port 10250) takes client certificates of the
//     cluster's CA and bearer tokens, and asks the API server to authorize
//     (Webhook), as a kubeadm node does.
//
// # Isolation
//
// Each node has its own mount namespace, held by a sleeping process (the
// holder) inside the node's network namespace; every daemon enters both
// with nsenter. Its propagation is private (unshare --propagation
// private), so no mount made inside — containers' root filesystems, pod
// volumes, CNI's pod netns files — reaches the machine's namespace, and
// all of them end with the namespace's last process: Remove never
// unmounts. Inside, Dir/run is /run and Dir/var is /var, so the paths
// containerd 1.6 and the kubelet hard-code (/run/containerd/s/ shim
// sockets, /var/lib/kubelet/device-plugins, /var/log/pods,
// /var/log/containers, /var/run/netns, /var/lib/cni) are the node's own
// and lie below Dir. Dir must therefore not be below /run or /var. The
// kubelet's flexvolume directory (volumePluginDir, by default
// /usr/libexec/kubernetes/..., made at start) is moved into that /var.
//
// The kubelet writes machine-wide sysctls at start (vm.overcommit_memory,
// vm.panic_on_oom, kernel.panic, kernel.panic_on_oops,
// kernel.keys.root_max*): inside the node each is a private file bound
// over its /proc/sys entry, so the machine keeps its values. kube-proxy's
// conntrack settings are all 0 ("leave as is"), so it writes neither
// nf_conntrack_max nor the hash size; its other sysctls are per network
// namespace.
//
// Each node has its own cgroup parent /bgplb-ID (the kubelet's cgroupRoot)
// in every hierarchy; the daemons write themselves into its child
// "daemons" before they exec, so their descendants (shims, containers) are
// found there too. Remove kills every task in those trees and, while the
// recorded holder still runs in it, in the mount namespace (a namespace's
// number is reused once it is freed), then removes the cgroups children
// first. It trusts its state file only as far as it names the node's own
// cgroups, namespace and bridge, and deletes no directory without one
// that holds more than Start's empty layout.
//
// # Needed on these machines (cgroup v1, root without CAP_SYS_RESOURCE)
//
//   - kubelet: failCgroupV1 false, cgroupDriver cgroupfs, failSwapOn
//     false, a CNI configuration present before it starts, tiny eviction
//     thresholds and image GC off (a busy disk must not taint the node or
//     delete images that cannot be pulled again).
//   - containerd's CRI: restrict_oom_score_adj = true, or every sandbox
//     fails with "can't get final child's PID from pipe: EOF";
//     sandbox_image set to an imported image.
//   - Harmless in the logs: "RuntimeConfig ... Unimplemented" (containerd
//     1.6 predates the call; the kubelet falls back to its configuration)
//     and "Failed to set rlimit".
//   - This VM's init does not reap orphans: once the process that started
//     a node has exited, its killed daemons stay as zombies (holding
//     nothing). Remove and its tests treat zombies as gone.
//
// # Pod network
//
// A CNI bridge (cni0) with host-local addresses from the node's pod CIDRs,
// the pods' default gateway, with masquerade and hairpin. Routes to other
// nodes' pod CIDRs over the LAN are the lab's to add.
package kubenode
