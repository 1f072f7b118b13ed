package seed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/lab"
)

// The seed's address plan: documentation prefixes only.
var (
	// LAN4 and LAN6 are the LAN's prefixes.
	LAN4 = netip.MustParsePrefix("198.51.100.0/24")
	LAN6 = netip.MustParsePrefix("2001:db8:51::/64")
	// Pool4 and Pool6 are the Service pools: on no link, reached only
	// through the routes a router learns.
	Pool4 = netip.MustParsePrefix("203.0.113.0/24")
	Pool6 = netip.MustParsePrefix("2001:db8:100::/48")
	// APIRange holds the API links: each lab takes the first /29 of it
	// that holds no LAN host (the client's .100 rules out .96/29) and that
	// no address of the root namespace overlaps. It stays clear of
	// 198.51.100.128/25, where kubetest's namespace test puts its random
	// /30 without asking anyone.
	APIRange = netip.MustParsePrefix("198.51.100.64/26")
)

// Host names.
const (
	Router  = "router"
	Router2 = "router2"
	Node1   = "node1"
	Node2   = "node2"
	Client  = "client"
)

// Roles of the hosts.
const (
	RoleRouter = "router"
	RoleNode   = "node"
	RoleClient = "client"
)

// DefaultPrefix starts the ID of a lab whose Options leave Prefix empty.
const DefaultPrefix = "seed"

// APIIfname is a node's interface on the API link.
const APIIfname = "api0"

// Names of the LANs (their switch namespaces are ID-sw-<name>).
const (
	LANName = "lan"
	APILAN  = "api"
)

// Options shape a lab.
type Options struct {
	// Prefix starts the lab's ID: a lower-case letter, then at most four
	// lower-case letters or digits; default DefaultPrefix. The ID adds six
	// hex digits, and the root namespace's veth is ID-api, which must fit
	// the kernel's 15 characters.
	Prefix string
	// Routers is 1 (default) or 2; the second, router2, is the write-up's
	// backup router.
	Routers int
	// CRDDir is a directory of CustomResourceDefinitions StartControlPlane
	// installs (config/crd/bases; see FindCRDDir); empty installs none.
	CRDDir string
}

var (
	prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,4}$`)
	idRE     = regexp.MustCompile(`^[a-z][a-z0-9]{0,4}[0-9a-f]{6}$`)
)

// HostInfo is one host of the lab.
type HostInfo struct {
	Name  string
	Role  string // RoleRouter, RoleNode or RoleClient
	Netns string // the namespace's name: `ip netns exec NAME ...`
	// Addr4 and Addr6 are the host's addresses on the LAN.
	Addr4, Addr6 netip.Addr
	// APIAddr is a node's address on the API link; invalid for others.
	APIAddr netip.Addr
}

// Seed is a running lab. Its methods are safe for concurrent use.
type Seed struct {
	// ID names everything the lab made; Open finds the lab by it.
	ID string
	// Lab holds the namespaces: the hosts, and the switches "sw-lan" and
	// "sw-api".
	Lab *lab.Lab

	opts   Options
	api    netip.Prefix // the API link's /29; invalid when unknown (a half-built lab found by Open)
	rootIf string       // the root end of the API link

	mu     sync.Mutex // guards the fields below
	envs   []*controlplane.Server
	dns    []*DNSServer
	closed bool
}

// hostTable lists the hosts of a lab with n routers.
func hostTable(routers int) []HostInfo {
	mk := func(name, role string, n int) HostInfo {
		return HostInfo{Name: name, Role: role,
			Addr4: netip.AddrFrom4([4]byte{198, 51, 100, byte(n)}),
			Addr6: lanAddr6(n)}
	}
	hs := []HostInfo{mk(Router, RoleRouter, 1)}
	if routers > 1 {
		hs = append(hs, mk(Router2, RoleRouter, 2))
	}
	return append(hs, mk(Node1, RoleNode, 11), mk(Node2, RoleNode, 12), mk(Client, RoleClient, 100))
}

// lanAddr6 is 2001:db8:51::N, N written in hex digits that read as the
// decimal of the IPv4 host part (::11 for .11), as people number them.
func lanAddr6(n int) netip.Addr {
	a := LAN6.Addr().As16()
	v := 0
	for _, d := range fmt.Sprint(n) {
		v = v*16 + int(d-'0')
	}
	a[14], a[15] = byte(v>>8), byte(v)
	return netip.AddrFrom16(a)
}

// New builds the lab. ctx bounds the building only. On error everything
// made so far is removed.
func New(ctx context.Context, o Options) (_ *Seed, err error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(o.Prefix) {
		return nil, fmt.Errorf("seed: prefix %q: a lower-case letter, then at most 4 lower-case letters or digits", o.Prefix)
	}
	if o.Routers == 0 {
		o.Routers = 1
	}
	if o.Routers < 1 || o.Routers > 2 {
		return nil, fmt.Errorf("seed: %d routers; the lab has 1 or 2", o.Routers)
	}
	l, err := lab.New(ctx, o.Prefix)
	if err != nil {
		return nil, err
	}
	s := &Seed{ID: l.ID, Lab: l, opts: o, rootIf: rootIfname(l.ID)}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("seed: build %s: %w", s.ID, err), s.Close())
		}
	}()
	hosts := hostTable(o.Routers)
	// Hosts first, so their sysctls are set before their interfaces exist:
	// the "default" values are what new interfaces inherit.
	for _, h := range hosts {
		ns, err := l.AddHost(ctx, h.Name)
		if err != nil {
			return nil, err
		}
		if err := ns.SetSysctls(ctx, hostSysctls(h.Role)); err != nil {
			return nil, err
		}
	}
	specs := make([]lab.HostSpec, 0, len(hosts))
	for _, h := range hosts {
		specs = append(specs, lab.HostSpec{Name: h.Name, Addrs: []netip.Prefix{
			netip.PrefixFrom(h.Addr4, LAN4.Bits()), netip.PrefixFrom(h.Addr6, LAN6.Bits())}})
	}
	if _, err := l.AddLAN(ctx, LANName, specs...); err != nil {
		return nil, err
	}
	for _, h := range hosts {
		ns := l.Host(h.Name)
		switch h.Role {
		case RoleRouter:
			err = ns.EnableForwarding(ctx, true, true)
		default:
			err = ns.IPBatch(ctx,
				[]string{"route", "add", "0.0.0.0/0", "via", s.RouterAddr(1).String()},
				[]string{"route", "add", "::/0", "via", s.RouterAddr6(1).String()})
		}
		if err != nil {
			return nil, err
		}
	}
	if err := s.buildAPILink(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// hostSysctls keeps traffic on the routes the lab sets up: a router
// forwarding between two hosts of one LAN would otherwise tell the sender
// (ICMP redirect) to go straight to the next hop, and the sender would
// keep doing so after the route moved. The router spreads ECMP by flow
// (addresses and ports), as a router facing many clients does: each of
// the lab client's queries (a new source port) takes its own path, rather
// than all of them the one their addresses hash to.
func hostSysctls(role string) map[string]string {
	if role == RoleRouter {
		return map[string]string{
			"net/ipv4/conf/all/send_redirects":     "0",
			"net/ipv4/conf/default/send_redirects": "0",
			"net/ipv4/fib_multipath_hash_policy":   "1",
			"net/ipv6/fib_multipath_hash_policy":   "1",
		}
	}
	return map[string]string{
		"net/ipv4/conf/all/accept_redirects":     "0",
		"net/ipv4/conf/default/accept_redirects": "0",
		"net/ipv6/conf/all/accept_redirects":     "0",
		"net/ipv6/conf/default/accept_redirects": "0",
	}
}

// Open finds a lab built earlier, possibly by a process that has died
// since, from its ID. Its hosts, addresses and API link are read back from
// the system; Close removes it. A half-built lab opens too, for Close.
func Open(id string) (*Seed, error) {
	if !idRE.MatchString(id) {
		return nil, fmt.Errorf("seed: %q is not a lab ID", id)
	}
	l, err := lab.Open(id)
	if err != nil {
		return nil, err
	}
	s := &Seed{ID: id, Lab: l, rootIf: rootIfname(id), opts: Options{Prefix: id[:len(id)-6], Routers: 1}}
	if l.Host(Router2) != nil {
		s.opts.Routers = 2
	}
	rootUp := false
	if ifi, err := net.InterfaceByName(s.rootIf); err == nil {
		rootUp = true
		if addrs, err := ifi.Addrs(); err == nil {
			for _, a := range addrs {
				if p, ok := ipNetPrefix(a); ok && p.Addr().Is4() && APIRange.Contains(p.Addr()) {
					s.api = p.Masked()
				}
			}
		}
	}
	if len(l.Hosts()) == 0 && !rootUp {
		return nil, fmt.Errorf("seed: no lab %s on this machine: %w", id, os.ErrNotExist)
	}
	return s, nil
}

// List returns the IDs of the labs whose ID starts with prefix (empty:
// DefaultPrefix) found on this machine, whole or in part, sorted.
func List(prefix string) ([]string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	names, err := lab.ListNetns(prefix)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range names {
		id, _, ok := strings.Cut(n, "-")
		if ok && idRE.MatchString(id) && len(id) == len(prefix)+6 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		id, ok := strings.CutSuffix(ifi.Name, "-api")
		if ok && strings.HasPrefix(id, prefix) && idRE.MatchString(id) && len(id) == len(prefix)+6 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Routers is the number of routers, 1 or 2.
func (s *Seed) Routers() int { return s.opts.Routers }

// Hosts describes the hosts, routers first, then nodes, then the client.
func (s *Seed) Hosts() []HostInfo {
	hs := hostTable(s.opts.Routers)
	for i := range hs {
		hs[i].Netns = s.ID + "-" + hs[i].Name
		hs[i].APIAddr = s.NodeAPIAddr(hs[i].Name)
	}
	return hs
}

// Nodes returns the names of the Kubernetes nodes.
func (s *Seed) Nodes() []string { return []string{Node1, Node2} }

func (s *Seed) info(name string) (HostInfo, bool) {
	hs := hostTable(s.opts.Routers)
	i := slices.IndexFunc(hs, func(h HostInfo) bool { return h.Name == name })
	if i < 0 {
		return HostInfo{}, false
	}
	return hs[i], true
}

// Host returns a host's namespace (or a switch's: "sw-lan", "sw-api"),
// nil if there is none.
func (s *Seed) Host(name string) *lab.Netns { return s.Lab.Host(name) }

// NodeAddr returns a host's IPv4 address on the LAN (any host, despite
// the name: "router", "node1", "client"); invalid for an unknown one.
func (s *Seed) NodeAddr(name string) netip.Addr {
	h, _ := s.info(name)
	return h.Addr4
}

// NodeAddr6 returns a host's IPv6 address on the LAN.
func (s *Seed) NodeAddr6(name string) netip.Addr {
	h, _ := s.info(name)
	return h.Addr6
}

// RouterName returns the name of router i, counted from 1: "router",
// "router2".
func RouterName(i int) string {
	if i == 1 {
		return Router
	}
	return fmt.Sprintf("router%d", i)
}

// RouterAddr returns router i's IPv4 address (i from 1: 198.51.100.1 is
// router, 198.51.100.2 router2); invalid if the lab has no such router.
func (s *Seed) RouterAddr(i int) netip.Addr {
	if i < 1 || i > s.opts.Routers {
		return netip.Addr{}
	}
	return s.NodeAddr(RouterName(i))
}

// RouterAddr6 is RouterAddr for IPv6.
func (s *Seed) RouterAddr6(i int) netip.Addr {
	if i < 1 || i > s.opts.Routers {
		return netip.Addr{}
	}
	return s.NodeAddr6(RouterName(i))
}

// Close stops the DNS responders and control planes the lab started,
// deletes the root namespace's veth and every namespace of the lab,
// killing what runs inside. It is idempotent.
func (s *Seed) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	dns, envs := s.dns, s.envs
	s.dns, s.envs = nil, nil
	s.mu.Unlock()
	var errs []error
	for _, d := range dns {
		errs = append(errs, d.Close())
	}
	for _, e := range envs {
		errs = append(errs, e.Stop())
	}
	errs = append(errs, s.deleteRootIf(), s.Lab.Close())
	return errors.Join(errs...)
}

func (s *Seed) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// String is Describe.
func (s *Seed) String() string { return s.Describe() }

// Describe renders the lab for people: hosts, namespaces, addresses.
func (s *Seed) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s: %d router(s), 2 nodes, 1 client\n", s.ID, s.opts.Routers)
	fmt.Fprintf(&b, "LAN %s %s: bridge %s in namespace %s-sw-%s\n", LAN4, LAN6, lab.BridgeName, s.ID, LANName)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST\tIPv4\tIPv6\tAPI LINK\tNAMESPACE\tROUTING")
	for _, h := range s.Hosts() {
		api := "-"
		if h.APIAddr.IsValid() {
			api = h.APIAddr.String()
		}
		routing := "forwarding"
		if h.Role != RoleRouter {
			routing = "default via " + s.RouterAddr(1).String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Addr4, h.Addr6, api, h.Netns, routing)
	}
	tw.Flush()
	fmt.Fprintf(&b, "Service pools %s %s: on no link, reached through the routers' routes\n", Pool4, Pool6)
	if s.api.IsValid() {
		fmt.Fprintf(&b, "API link %s: bridge in namespace %s-sw-%s; kube-apiserver binds %s (root namespace, interface %s); nodes on %s\n",
			s.api, s.ID, APILAN, s.APIServerAddr(), s.rootIf, APIIfname)
	} else {
		fmt.Fprintf(&b, "API link: not found (no interface %s)\n", s.rootIf)
	}
	return b.String()
}

func ipNetPrefix(a net.Addr) (netip.Prefix, bool) {
	ipn, ok := a.(*net.IPNet)
	if !ok {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(ipn.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := ipn.Mask.Size()
	if ip.Is4In6() && bits == 128 {
		ones -= 96
	}
	return netip.PrefixFrom(ip.Unmap(), ones), true
}
