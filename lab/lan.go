package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// DefaultIfname is the name of a host's interface on its first LAN.
const DefaultIfname = "eth0"

// BridgeName is the bridge inside every switch namespace.
const BridgeName = "br0"

// HostSpec is one host's port on a LAN.
type HostSpec struct {
	// Name is the host's name in the lab (router, node1, client); it also
	// names the bridge port in the switch, so at most 15 characters.
	Name string
	// Ifname is the host's interface on this LAN; default eth0.
	Ifname string
	// Addrs are the host's addresses on the LAN, with the LAN's prefix
	// length: 198.51.100.11/24, 2001:db8::11/64.
	Addrs []netip.Prefix
}

// Lab is a set of host namespaces joined by LANs. Every namespace is named
// ID + "-" + host, so overlapping labs never collide and Open can find a
// lab again from its ID. A Lab is safe for concurrent use.
type Lab struct {
	ID string

	mu    sync.Mutex // guards hosts and lans
	hosts map[string]*Netns
	lans  map[string]*LAN
}

// LAN is a bridge in a dedicated switch namespace with one veth port per
// host. The switch namespace holds nothing else, so a host's view of the
// LAN is exactly its own interface.
type LAN struct {
	Name   string
	Switch *Netns

	mu    sync.Mutex // guards ports
	ports map[string]HostSpec
}

var hostRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,14}$`)

// New creates an empty lab whose ID is prefix plus a random suffix.
func New(ctx context.Context, prefix string) (*Lab, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Lab{ID: prefix + UniqueSuffix(), hosts: map[string]*Netns{}, lans: map[string]*LAN{}}, nil
}

// NewLAN creates a lab with one LAN named "lan" joining the given hosts.
func NewLAN(ctx context.Context, prefix string, hosts ...HostSpec) (*Lab, *LAN, error) {
	l, err := New(ctx, prefix)
	if err != nil {
		return nil, nil, err
	}
	lan, err := l.AddLAN(ctx, "lan", hosts...)
	if err != nil {
		return nil, nil, errors.Join(err, l.Close())
	}
	return l, lan, nil
}

// Open attaches to the namespaces of a lab created earlier, possibly by
// another process. Its hosts are every namespace named ID-*, switches
// included (as "sw-<lan>"); the LAN wiring is not reconstructed.
func Open(id string) (*Lab, error) {
	names, err := ListNetns(id + "-")
	if err != nil {
		return nil, err
	}
	l := &Lab{ID: id, hosts: map[string]*Netns{}, lans: map[string]*LAN{}}
	for _, name := range names {
		ns, err := OpenNetns(name)
		if err != nil {
			return nil, err
		}
		l.hosts[strings.TrimPrefix(name, id+"-")] = ns
	}
	return l, nil
}

// AddHost creates a host namespace, or returns the existing one.
func (l *Lab) AddHost(ctx context.Context, name string) (*Netns, error) {
	if !hostRE.MatchString(name) {
		return nil, fmt.Errorf("lab: host name %q: lower-case letters, digits and '-', at most 15", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ns, ok := l.hosts[name]; ok {
		return ns, nil
	}
	ns, err := CreateNetns(ctx, l.ID+"-"+name)
	if err != nil {
		return nil, err
	}
	l.hosts[name] = ns
	return ns, nil
}

// Host returns a host's namespace, or nil.
func (l *Lab) Host(name string) *Netns {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// Hosts returns the host names, sorted.
func (l *Lab) Hosts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.hosts))
	for n := range l.hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// LAN returns a LAN by name, or nil.
func (l *Lab) LAN(name string) *LAN {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lans[name]
}

// AddLAN creates a LAN (its switch namespace is host "sw-<name>") and
// connects the hosts, creating those that do not exist yet.
func (l *Lab) AddLAN(ctx context.Context, name string, hosts ...HostSpec) (*LAN, error) {
	l.mu.Lock()
	_, dup := l.lans[name]
	l.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("lab: LAN %q exists", name)
	}
	sw, err := l.AddHost(ctx, "sw-"+name)
	if err != nil {
		return nil, err
	}
	if err := sw.AddBridge(ctx, BridgeName); err != nil {
		return nil, err
	}
	lan := &LAN{Name: name, Switch: sw, ports: map[string]HostSpec{}}
	l.mu.Lock()
	l.lans[name] = lan
	l.mu.Unlock()
	for _, h := range hosts {
		if err := l.Connect(ctx, name, h); err != nil {
			return nil, err
		}
	}
	return lan, nil
}

// Connect plugs a host (created if needed) into a LAN: a veth pair whose
// switch end, named after the host, joins the bridge, and whose host end
// gets the addresses. It returns once the addresses are usable.
func (l *Lab) Connect(ctx context.Context, lanName string, h HostSpec) error {
	lan := l.LAN(lanName)
	if lan == nil {
		return fmt.Errorf("lab: no LAN %q", lanName)
	}
	if h.Ifname == "" {
		h.Ifname = DefaultIfname
	}
	if err := checkIfname(h.Ifname); err != nil {
		return err
	}
	ns, err := l.AddHost(ctx, h.Name)
	if err != nil {
		return err
	}
	lan.mu.Lock()
	_, dup := lan.ports[h.Name]
	if !dup {
		lan.ports[h.Name] = h
	}
	lan.mu.Unlock()
	if dup {
		return fmt.Errorf("lab: %s is already on LAN %s", h.Name, lanName)
	}
	// One ip process per side; `ip -n SW link add ... netns HOST` creates
	// both ends at once.
	sw := lan.Switch
	err = sw.IPBatch(ctx,
		[]string{"link", "add", "name", h.Name, "type", "veth", "peer", "name", h.Ifname, "netns", ns.Name},
		[]string{"link", "set", "dev", h.Name, "master", BridgeName},
		[]string{"link", "set", "dev", h.Name, "up"})
	if err == nil {
		cmds := [][]string{{"link", "set", "dev", h.Ifname, "up"}}
		for _, a := range h.Addrs {
			cmds = append(cmds, addrAddArgs(h.Ifname, a))
		}
		err = ns.IPBatch(ctx, cmds...)
	}
	if err == nil {
		err = ns.WaitAddrs(ctx, h.Ifname, h.Addrs...)
	}
	if err != nil {
		return fmt.Errorf("lab: connect %s to %s: %w", h.Name, lanName, err)
	}
	return nil
}

// Port returns a host's spec on the LAN (Ifname filled in).
func (lan *LAN) Port(host string) (HostSpec, bool) {
	lan.mu.Lock()
	defer lan.mu.Unlock()
	h, ok := lan.ports[host]
	return h, ok
}

// SetLink plugs (up) or unplugs (down) a host's cable at the switch: the
// host keeps its interface and addresses but reaches no one, as when a node
// fails, and its carrier drops, as a real switch port would make it.
func (lan *LAN) SetLink(ctx context.Context, host string, up bool) error {
	if _, ok := lan.Port(host); !ok {
		return fmt.Errorf("lab: %s is not on LAN %s", host, lan.Name)
	}
	if up {
		return lan.Switch.SetUp(ctx, host)
	}
	return lan.Switch.SetDown(ctx, host)
}

// Close removes every namespace of the lab, stopping everything in them.
func (l *Lab) Close() error {
	l.mu.Lock()
	hosts := l.hosts
	l.hosts = map[string]*Netns{}
	l.lans = map[string]*LAN{}
	l.mu.Unlock()
	// In parallel: each may wait seconds for a daemon to honour SIGTERM.
	errs := make(chan error, len(hosts))
	var wg sync.WaitGroup
	for _, ns := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- ns.Close()
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// Addr returns the host's first address of the given family (4 or 6) on a
// LAN, for configuring peers.
func (lan *LAN) Addr(host string, family int) (netip.Addr, bool) {
	h, ok := lan.Port(host)
	if !ok {
		return netip.Addr{}, false
	}
	for _, p := range h.Addrs {
		if (family == 4) == p.Addr().Is4() {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}
