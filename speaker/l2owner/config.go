package l2owner

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Defaults of Config's timings: a crashed owner's addresses move within
// about LeaseDuration.
const (
	DefaultLeaseDuration = 1500 * time.Millisecond
	DefaultRenewInterval = 500 * time.Millisecond
)

// Config configures an Elector.
type Config struct {
	Namespace string // the speaker's namespace; the Leases live here
	Node      string
	// LeaseDuration is how long observers hold a node live after they saw
	// its last renewal. Default DefaultLeaseDuration.
	LeaseDuration time.Duration
	// RenewInterval is the heartbeat period; it must be < LeaseDuration/2.
	// Default DefaultRenewInterval.
	RenewInterval time.Duration
	// OnChange is called from the elector's goroutine with the full set of
	// addresses this node must answer for now, every time it changes:
	// before a handover is written (stop first) and after an acquire
	// succeeded (start after). It must not block long.
	OnChange func(owned []netip.Addr)
	// OnTransition reports ownership changes seen in the address leases.
	OnTransition func(t Transition)
	// OnFence, if set, is called after every renewal of this node's
	// heartbeat with the instant its fence now ends: from then on this
	// node must not answer, unless a later call moves it. The loop stops
	// answering at that instant too (OnChange), but only when it runs;
	// a responder that checks the instant itself is silent even while the
	// loop is late. Called from the heartbeat goroutine.
	OnFence func(until time.Time)
	Log     *slog.Logger
}

// Want is one L2 address the cluster serves.
type Want struct {
	Addr     netip.Addr
	Policies []string        // the L2AnnouncementPolicies that select the address's pool
	Nodes    map[string]bool // nil: any node; else only these (ETP Local with usable endpoints)
	Services []string        // "ns/name"
}

// Transition is an ownership change seen on an address lease.
type Transition struct {
	Addr     netip.Addr
	From, To string // "" for none
	Services []string
}

// AddressStatus is this node's view of one wanted address.
type AddressStatus struct {
	Addr        netip.Addr
	Holder      string
	Since       time.Time // the lease's acquireTime
	Transitions int32
	Candidates  []string // ranked, best first
	Services    []string
	Owned       bool // this node answers for it
}

// withDefaults fills the zero timings and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = DefaultRenewInterval
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if c.Namespace == "" {
		errs = append(errs, errors.New("namespace is empty"))
	}
	if c.Node == "" {
		errs = append(errs, errors.New("node is empty"))
	}
	if c.RenewInterval <= 0 || c.LeaseDuration <= 0 {
		errs = append(errs, fmt.Errorf("lease duration %v and renew interval %v must be positive", c.LeaseDuration, c.RenewInterval))
	} else if 2*c.RenewInterval >= c.LeaseDuration {
		// Under half the duration a node whose renewal fails still has
		// time for a retry before its fence (fenceMargin) ends.
		errs = append(errs, fmt.Errorf("renew interval %v must be less than half the lease duration %v", c.RenewInterval, c.LeaseDuration))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("l2owner: config: %w", err)
	}
	return c, nil
}

// The timings derived from RenewInterval. A node counts itself live until
// fenceMargin before any observer may see its heartbeat expire: the
// deciding loop makes no API call and wakes at the fence, so the margin
// covers only a step's own work. A failed renewal is retried after
// retryDelay rather than a whole interval later; one renewal lasts as
// long as the fence still holds, and at least as long as a fence lasts
// (a server slower than RenewInterval must still be able to renew). Address
// lease writes and the reads they need last at most writeTimeout: an API
// server answering slowly must still be able to move addresses.
func (c Config) fenceMargin() time.Duration     { return c.RenewInterval / 2 }
func (c Config) retryDelay() time.Duration      { return c.RenewInterval / 8 }
func (c Config) minRenewTimeout() time.Duration { return c.LeaseDuration - c.fenceMargin() }
func (c Config) writeTimeout() time.Duration    { return c.LeaseDuration }

// Lease labels and annotations. Those the controller reads too (the
// holder of an address's Lease is its owner) live in lbmodel.
const (
	labelKind       = lbmodel.L2LeaseLabel // "node" or "address"
	kindNode        = "node"
	kindAddress     = lbmodel.L2LeaseKindAddress
	annDuration     = "bgplb.io/lease-duration"
	annPolicies     = "bgplb.io/l2-policies"
	annServices     = "bgplb.io/services"
	annAddress      = lbmodel.L2LeaseAddressAnnotation
	nodeLeasePrefix = "l2-node-"
	addrLeasePrefix = "l2-addr-"
)

// AddressLeaseName is the lease name for addr: readable, a valid DNS
// subdomain, one per address. IPv6 is written expanded (every group, four
// digits) because the compressed form can begin or end with "::", which
// would put a dash at the end of the name.
func AddressLeaseName(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addrLeasePrefix + strings.ReplaceAll(addr.String(), ".", "-")
	}
	return addrLeasePrefix + strings.ReplaceAll(addr.StringExpanded(), ":", "-")
}

// NodeLeaseName is the heartbeat lease name of node. A node name may be as
// long as a lease name can be; a long one is cut and a hash of the whole
// keeps it unique.
func NodeLeaseName(node string) string {
	const maxName = 253
	if len(nodeLeasePrefix)+len(node) <= maxName {
		return nodeLeasePrefix + node
	}
	h := fnv.New64a()
	h.Write([]byte(node))
	cut := strings.TrimRight(node[:200], ".-")
	return fmt.Sprintf("%s%s-%016x", nodeLeasePrefix, cut, h.Sum64())
}
