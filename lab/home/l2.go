package home

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/images"
	"github.com/bgplb/bgplb/lab/seed"
)

// The lab's modes: how the Pi-hole's address reaches the client.
const (
	// ModeBGP: the nodes announce the address to the routers over BGP
	// (the seed's story).
	ModeBGP = "bgp"
	// ModeL2: one node answers ARP and NDP for an address on the LAN
	// itself (the seed's first try, MetalLB's L2 mode); no router learns
	// anything.
	ModeL2 = "l2"
)

// The addresses the L2 lab's Services ask for: on the LAN, in the pool of
// deploy/examples/l2-pool.yaml.
var (
	L2VIP  = netip.MustParseAddr("198.51.100.153")
	L2VIP6 = netip.MustParseAddr("2001:db8:51::153")
)

// The L2 lab's Services: the Pi-hole's (deploy/examples/pihole-l2.yaml)
// and the lab's IPv6 stand-in (cluster/pihole-l2-v6.yaml).
const (
	l2Service  = "pihole-l2"
	l2Service6 = "pihole-l2-v6"
)

// l2Examples are what Up applies in L2 mode, from deploy/examples.
var l2Examples = []string{"l2-pool.yaml", "l2announcementpolicy.yaml"}

// piholeV6 gives the L2 lab an IPv6 address to answer NDP for: the lab's
// pods are IPv4 only, so a Service selecting them has no IPv6 endpoint and
// no IPv6 address is owned. A Service without a selector, whose hand-made
// EndpointSlice names one IPv6 endpoint, has.
//
//go:embed cluster/pihole-l2-v6.yaml
var piholeV6 string

// l2 reports whether the lab runs in L2 mode.
func (st *State) l2() bool { return st.Mode == ModeL2 }

// mode is the lab's mode; a state from before L2 mode was BGP.
func (st *State) mode() string {
	if st.Mode == "" {
		return ModeBGP
	}
	return st.Mode
}

// vip is the address the client asks the Pi-hole at.
func (st *State) vip() netip.Addr {
	if st.l2() {
		return L2VIP
	}
	return PiholeVIP
}

// l2Steps lists Up's work for the L2 variant of the real cluster: no
// router daemon, no BGP configuration; the Pi-hole runs on both nodes
// (its Service is externalTrafficPolicy Local, so only a node with a pod
// may own the address, and a failover needs a pod on the other node).
func (u *upper) l2Steps(ctx context.Context) []step {
	return append(u.clusterBase(ctx),
		step{"installing bgplb from deploy/bgplb.yaml (controller Deployment, speaker DaemonSet) with the lab's image",
			func() error { return u.install(ctx) }},
		u.applyStep(ctx, l2Examples),
		step{"waiting for bgplb's controller and a speaker on every node to be Ready", func() error { return u.waitBGPLB(ctx) }},
		step{"creating the Pi-hole Deployment (two replicas), its L2 Service (deploy/examples/pihole-l2.yaml) and an IPv6 stand-in",
			func() error { return u.piholeL2(ctx) }},
		step{"waiting for a Ready Pi-hole pod on each node", func() error { return u.spreadPihole(ctx) }},
		step{fmt.Sprintf("waiting for a node to own %s (the address Leases)", L2VIP6), func() error {
			return u.whileAlive(ctx, func(ctx context.Context) error {
				_, err := u.waitOwner(ctx, L2VIP6, "")
				return err
			})
		}},
		u.l2SettledStep(ctx),
	)
}

// applyStep applies example files of deploy/examples, in order.
func (u *upper) applyStep(ctx context.Context, files []string) step {
	return step{"applying deploy/examples: " + strings.Join(files, ", "), func() error {
		for _, f := range files {
			if err := u.k.applyFile(ctx, filepath.Join(u.src, "deploy", "examples", f)); err != nil {
				return err
			}
		}
		return nil
	}}
}

// piholeL2 creates the Pi-hole Deployment with two replicas, each
// preferring a node without the other, and the L2 Services.
func (u *upper) piholeL2(ctx context.Context) error {
	dep := strings.ReplaceAll(piholeDeployment, "image: IMAGE", "image: "+u.imageRef(images.Pihole))
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(dep), &d); err != nil {
		return fmt.Errorf("the Pi-hole Deployment: %w", err)
	}
	spreadOut(&d)
	if err := u.k.create(ctx, &d); err != nil {
		return err
	}
	if err := u.k.applyFile(ctx, filepath.Join(u.src, "deploy", "examples", "pihole-l2.yaml")); err != nil {
		return err
	}
	return u.k.applyBytes(ctx, "pihole-l2-v6.yaml", []byte(piholeV6))
}

// spreadOut makes d two replicas that prefer different nodes. Preferred,
// not required: a rolling update's extra pod, or a node cut off, must not
// leave a pod unscheduled.
func spreadOut(d *appsv1.Deployment) {
	two := int32(2)
	d.Spec.Replicas = &two
	d.Spec.Template.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				LabelSelector: d.Spec.Selector,
				TopologyKey:   corev1.LabelHostname,
			},
		}},
	}}
}

// spreadPihole waits until each node runs a Ready Pi-hole pod. When one
// node holds both (after a failover or a move), it deletes one of them
// there: its replacement prefers the other node.
func (u *upper) spreadPihole(ctx context.Context) error {
	last := ""
	err := lab.Poll(ctx, 200*time.Millisecond, func() (bool, error) {
		var pods corev1.PodList
		if err := u.k.c.List(ctx, &pods, client.InNamespace("default"), piholeSelector); err != nil {
			return false, nil
		}
		ready := readyByNode(pods.Items)
		last = fmt.Sprint(ready)
		done, victim := spreadMove(ready, pods.Items, u.s.Nodes())
		if victim != nil {
			return false, client.IgnoreNotFound(u.k.c.Delete(ctx, victim))
		}
		return done, nil
	})
	if err != nil {
		return fmt.Errorf("the Pi-hole on both nodes: %w; Ready pods by node: %s\n%s", err, last, u.k.podReport(ctx, "default", piholeSelector))
	}
	return nil
}

// readyByNode counts the Ready, not terminating pods by node.
func readyByNode(pods []corev1.Pod) map[string]int {
	out := map[string]int{}
	for _, p := range pods {
		if n := readyNode([]corev1.Pod{p}, ""); n != "" {
			out[n]++
		}
	}
	return out
}

// spreadMove says whether every node has a Ready pod, and otherwise which
// pod to delete so that one moves: one on a node with two or more, once
// every pod is Ready or gone (a pod on its way up may go where needed).
func spreadMove(ready map[string]int, pods []corev1.Pod, nodes []string) (done bool, victim *corev1.Pod) {
	if !slices.ContainsFunc(nodes, func(n string) bool { return ready[n] == 0 }) {
		return true, nil
	}
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp == nil && readyNode([]corev1.Pod{*p}, "") == "" {
			return false, nil // one is on its way: wait for it
		}
	}
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp == nil && ready[p.Spec.NodeName] >= 2 {
			return false, p
		}
	}
	return false, nil
}

// addressLeaseLabel marks the Leases that elect an L2 address's owner
// (speaker/l2owner): the holder answers for the address.
const (
	addressLeaseLabel = "bgplb.io/l2-lease"
	addressLeaseKind  = "address"
	addressLeaseAddr  = "bgplb.io/address"
)

// leaseOwners reads the address Leases: each address's holder, and since
// when it holds it. A lease with no holder, or not about an address, is
// left out.
func leaseOwners(ls []coordinationv1.Lease) map[netip.Addr]owner {
	out := map[netip.Addr]owner{}
	for _, l := range ls {
		if l.Labels[addressLeaseLabel] != addressLeaseKind || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			continue
		}
		a, err := netip.ParseAddr(l.Annotations[addressLeaseAddr])
		if err != nil {
			continue
		}
		o := owner{Node: *l.Spec.HolderIdentity}
		if l.Spec.AcquireTime != nil {
			o.Since = l.Spec.AcquireTime.Time
		}
		out[a] = o
	}
	return out
}

// owner is the node that answers for an address, as its Lease says.
type owner struct {
	Node  string
	Since time.Time
}

// owners reads the address Leases of bgplb's namespace.
func (k *kube) owners(ctx context.Context) (map[netip.Addr]owner, error) {
	var ls coordinationv1.LeaseList
	if err := k.c.List(ctx, &ls, client.InNamespace(speakerNamespace), client.MatchingLabels{addressLeaseLabel: addressLeaseKind}); err != nil {
		return nil, err
	}
	return leaseOwners(ls.Items), nil
}

// owner is addr's owner now; an error when it has none.
func (u *upper) owner(ctx context.Context, addr netip.Addr) (string, error) {
	owned, err := u.k.owners(ctx)
	if err != nil {
		return "", err
	}
	if o, ok := owned[addr]; ok {
		return o.Node, nil
	}
	return "", fmt.Errorf("no node owns %s (no address Lease with a holder)", addr)
}

// waitOwner waits until a node other than notOn owns addr, and returns it.
func (u *upper) waitOwner(ctx context.Context, addr netip.Addr, notOn string) (string, error) {
	var got string
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		got, _ = u.owner(ctx, addr)
		return got != "" && got != notOn, nil
	})
	if err != nil {
		return "", fmt.Errorf("waiting for an owner of %s other than %q (last seen %q): %w; speaker pods:\n%s",
			addr, notOn, got, err, u.k.podReport(ctx, speakerNamespace, nil))
	}
	return got, nil
}

// waitOwnerAnswer asks the Pi-hole at L2VIP from the client until the
// pod of the node owning the address then answers (ETP Local: its own).
// The owner is read again on each try: a new address may change hands
// while the speakers start.
func (u *upper) waitOwnerAnswer(ctx context.Context) error {
	last, owner := "nothing", ""
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		var err error
		if owner, err = u.owner(ctx, L2VIP); err != nil {
			last = err.Error()
			return false, nil
		}
		a, err := u.s.Query(ctx, seed.Client, L2VIP, "pihole.lab.", false)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = "an answer from " + a.Node
		return a.Node == owner, nil
	})
	if err != nil {
		return fmt.Errorf("no DNS answer at %s from its owner's Pi-hole (owner %q; last try: %s): %w", L2VIP, owner, last, err)
	}
	return nil
}

// Neighbor is one entry of a host's neighbour table (`ip -j neigh`).
type Neighbor struct {
	Dst    netip.Addr `json:"dst"`
	Dev    string     `json:"dev"`
	LLAddr string     `json:"lladdr"`
	State  []string   `json:"state"`
}

func (n Neighbor) String() string {
	ll := n.LLAddr
	if ll == "" {
		ll = "(none)"
	}
	return fmt.Sprintf("%s dev %s lladdr %s %s", n.Dst, n.Dev, ll, strings.Join(n.State, ","))
}

// parseNeighbors reads `ip -j neigh show` output.
func parseNeighbors(b []byte) ([]Neighbor, error) {
	var ns []Neighbor
	if err := json.Unmarshal(b, &ns); err != nil {
		return nil, fmt.Errorf("ip -j neigh: %w", err)
	}
	return ns, nil
}

// neighbor is host's neighbour entry for addr; ok false without one.
func (u *upper) neighbor(ctx context.Context, host string, addr netip.Addr) (Neighbor, bool, error) {
	b, err := u.s.Host(host).IPOutput(ctx, "-j", "neigh", "show", "to", addr.String())
	if err != nil {
		return Neighbor{}, false, err
	}
	ns, err := parseNeighbors(b)
	if err != nil {
		return Neighbor{}, false, err
	}
	for _, n := range ns {
		if n.Dst == addr {
			return n, true, nil
		}
	}
	return Neighbor{}, false, nil
}

// nodeMAC is node's MAC on the LAN.
func (u *upper) nodeMAC(node string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := u.s.Host(node).Do(func() error {
		ifi, err := net.InterfaceByName(lab.DefaultIfname)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	})
	return mac, err
}

// waitNeighbor waits until host's neighbour entry for addr names mac,
// asking addr now and then (a query to its DNS port) so that the host
// resolves it.
func (u *upper) waitNeighbor(ctx context.Context, host string, addr netip.Addr, mac net.HardwareAddr) (Neighbor, error) {
	var last Neighbor
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		n, ok, err := u.neighbor(ctx, host, addr)
		if err != nil {
			return false, err
		}
		last = n
		if ok && strings.EqualFold(n.LLAddr, mac.String()) {
			return true, nil
		}
		if !ok || n.LLAddr == "" || slices.Contains(n.State, "FAILED") || slices.Contains(n.State, "STALE") {
			qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_, _ = u.s.Query(qctx, host, addr, "pihole.lab.", false)
			cancel()
		}
		return false, nil
	})
	if err != nil {
		return last, fmt.Errorf("%s's neighbour entry for %s never named %s (last: %s): %w", host, addr, mac, last, err)
	}
	return last, nil
}

// showL2 prints what L2 mode shows instead of the routers' view: who owns
// each address, the client's neighbour entries, and a DNS answer the
// client got on the LAN.
func showL2(ctx context.Context, w io.Writer, s *seed.Seed, st *State) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	k, err := newKube(st.Kubeconfig)
	if err != nil {
		return err
	}
	u := &upper{s: s, st: st, k: k}
	var errs []error
	owned, err := k.owners(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("address Leases: %w", err))
	}
	macs := map[string]string{}
	for _, n := range s.Nodes() {
		if m, err := u.nodeMAC(n); err == nil {
			macs[n] = m.String()
		}
	}
	fmt.Fprintf(w, "$ bgplb lab kubectl get leases -n %s -l %s=%s        # the L2 owners\n", speakerNamespace, addressLeaseLabel, addressLeaseKind)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tOWNER\tMAC\tSINCE")
	for _, a := range []netip.Addr{L2VIP, L2VIP6} {
		o, ok := owned[a]
		if !ok {
			fmt.Fprintf(tw, "%s\t(none)\t\t\n", a)
			continue
		}
		since := "-"
		if !o.Since.IsZero() {
			since = time.Since(o.Since).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a, o.Node, macs[o.Node], since)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n$ bgplb lab exec client -- ip neigh show %s; ip -6 neigh show %s\n", L2VIP, L2VIP6)
	for _, a := range []netip.Addr{L2VIP, L2VIP6} {
		n, ok, err := u.neighbor(ctx, seed.Client, a)
		if err == nil && !ok {
			// Not asked yet (nothing asks the IPv6 address): one query
			// makes the client resolve it.
			qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			_, _ = s.Query(qctx, seed.Client, a, "pihole.lab.", false)
			cancel()
			n, ok, err = u.neighbor(ctx, seed.Client, a)
		}
		switch {
		case err != nil:
			errs = append(errs, err)
		case !ok:
			fmt.Fprintf(w, "%s: no entry\n", a)
		default:
			fmt.Fprintf(w, "%s%s\n", n, macOwner(macs, n.LLAddr))
		}
	}
	fmt.Fprintf(w, "\n# on client: pihole.lab? asked of %s, on the LAN\n", L2VIP)
	a, err := s.Query(ctx, seed.Client, L2VIP, "pihole.lab.", false)
	if err != nil {
		errs = append(errs, fmt.Errorf("DNS from the client: %w", err))
		fmt.Fprintf(w, "no answer: %v\n", err)
	} else {
		fmt.Fprintf(w, "%s, answered by the Pi-hole on %s\n", a.Name, a.Node)
	}
	return errors.Join(errs...)
}

// macOwner names the node whose MAC mac is, for a neighbour entry.
func macOwner(macs map[string]string, mac string) string {
	for n, m := range macs {
		if strings.EqualFold(m, mac) {
			return "    # " + n + "'s MAC"
		}
	}
	return ""
}

// l2Status prints bgplb's L2 reports: the addresses each node says it
// answers for (ServiceAnnouncement status.l2), and where.
func l2Status(w io.Writer, anns []v1alpha1.ServiceAnnouncement) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICEANNOUNCEMENT\tNODE\tL2 ADDRESS\tINTERFACES\tSINCE\tERROR")
	for _, a := range anns {
		for _, x := range a.Status.L2 {
			since := "-"
			if x.Since != nil {
				since = x.Since.UTC().Format(time.TimeOnly)
			}
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\n", a.Namespace, a.Name, a.Spec.Node, x.Address,
				strings.Join(x.Interfaces, ","), since, x.LastError)
		}
	}
	tw.Flush()
}

// Owners reads who owns each L2 address of a running lab, as the address
// Leases say: address → node.
func Owners(ctx context.Context, o Options) (map[netip.Addr]string, error) {
	st, _, err := open(&o)
	if err != nil {
		return nil, err
	}
	k, err := newKube(st.Kubeconfig)
	if err != nil {
		return nil, err
	}
	owned, err := k.owners(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[netip.Addr]string, len(owned))
	for a, x := range owned {
		out[a] = x.Node
	}
	return out, nil
}
