package router

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the router daemon's configuration, validated and with defaults
// filled in. Load builds it from YAML; the zero value is not usable.
type Config struct {
	ASN              uint32
	RouterID         netip.Addr
	Listen           []netip.AddrPort
	Neighbors        []Neighbor
	DynamicNeighbors []DynamicNeighbor
	Import           Import
	FIB              FIBConfig
	Limits           Limits
	// GracefulRestart is the default of every neighbour and range that
	// does not set its own.
	GracefulRestart GracefulRestart
	API             APIConfig
	Metrics         MetricsConfig
}

// Timers are a peer's session timers; zero means the session default.
type Timers struct {
	Hold, Keepalive, ConnectRetry time.Duration
	// NoHold is holdTime: 0, RFC 4271's hold time of zero: no hold timer
	// and no keepalives (Hold is then zero too).
	NoHold bool
}

// Neighbor is a statically configured peer.
type Neighbor struct {
	Address       netip.Addr
	Port          uint16
	PeerASN       uint32
	Password      string
	Passive       bool
	Timers        Timers
	Multihop      uint8 // eBGP multihop TTL; 0 = directly connected
	TTLSecurity   bool  // GTSM (RFC 5082)
	SourceAddress netip.Addr
	SourcePort    uint16 // 0 = any
	Description   string
	// BFD, if enabled, runs a BFD session with the neighbour while its
	// BGP session is established; BFD going down tears the session down.
	BFD BFD
	// GracefulRestart is the helper side of RFC 4724 for this neighbour.
	GracefulRestart GracefulRestart
}

// DynamicNeighbor accepts any peer connecting from Prefix.
type DynamicNeighbor struct {
	Prefix   netip.Prefix
	PeerASN  uint32
	Password string
	Timers   Timers
	// MaxPeers caps the sessions from this range; default DefaultMaxPeers.
	MaxPeers int
	// TTLSecurity is GTSM (RFC 5082) for the range: only directly
	// connected peers (TTL 255) may connect.
	TTLSecurity bool
	// BFD, if enabled, runs a BFD session with every peer accepted from
	// the range while its BGP session is established.
	BFD BFD
	// GracefulRestart is the helper side of RFC 4724 for the range's peers.
	GracefulRestart GracefulRestart
}

// GracefulRestart is how the router helps a peer that restarts (RFC 4724):
// when its session ends without a NOTIFICATION, the peer's routes stay in
// the RIB and the kernel, marked stale, until it sends them again.
type GracefulRestart struct {
	// Enabled announces the capability; a peer that announces it too has
	// its routes kept across its restarts. Default true.
	Enabled bool
	// RestartTime caps the restart time the peer asks for: how long its
	// routes are kept while its session is down.
	RestartTime time.Duration
	// StaleTime is how long, once the peer's session is back, its routes
	// not announced again are kept while it has not sent End-of-RIB.
	StaleTime time.Duration
}

// BFD is a neighbour's BFD settings (RFC 5880): the intervals this end
// asks for and the number of missed packets that declare the path down.
// It is a value, not a pointer, so configs compare with ==.
type BFD struct {
	Enabled      bool // a bfd block is present
	MinTx, MinRx time.Duration
	Multiplier   uint8
	// Passive waits for the peer's first packet before sending.
	Passive bool
}

// Limits bound what the peers may make the router hold.
type Limits struct {
	// MaxSessions caps all sessions, static and dynamic: connections
	// beyond it are refused.
	MaxSessions int
}

// Import is the guard on what routes the router accepts.
type Import struct {
	Prefixes        []netip.Prefix
	MinPrefixLength PerFamily
	MaxPrefixLength PerFamily
	MaxPrefixes     int // per peer
}

// PerFamily holds one value per address family.
type PerFamily struct{ IPv4, IPv6 int }

// FIBConfig says how routes go into the kernel.
type FIBConfig struct {
	Table  int
	Metric uint32
	ECMP   bool
	// GraceTime is how long routes left by a previous run are kept while
	// peers reconnect.
	GraceTime      time.Duration
	NextHopObjects string // auto, on, off
	// Protocol is the kernel route protocol the router owns: it adds,
	// replaces and deletes only routes of this protocol in Table.
	Protocol uint8
	// ResyncInterval is the period of the full comparison of the kernel
	// with the RIB, the safety net behind the kernel's events.
	ResyncInterval time.Duration
	// Resilient configures the resilient nexthop groups of ECMP routes.
	Resilient ResilientConfig
}

// ResilientConfig is fib.resilient: ECMP through resilient nexthop groups
// (Linux 5.13+), so that a node leaving moves only the flows it carried.
type ResilientConfig struct {
	// Enabled uses them where the kernel has them; elsewhere (and with
	// nextHopObjects off) ECMP is hash-threshold, which the log says.
	Enabled bool
	// Buckets is the size of every group's bucket table (256..8192: every
	// member of the largest ECMP set needs one).
	Buckets int
	// IdleTimer is how long a bucket must be idle before it may move to
	// another member (a node that joined, or got more weight).
	IdleTimer time.Duration
	// UnbalancedTimer, when not 0, moves busy buckets too once a group has
	// been unbalanced that long (their flows move).
	UnbalancedTimer time.Duration
}

// APIConfig is the local API.
type APIConfig struct{ Socket string }

// MetricsConfig is the Prometheus endpoint.
type MetricsConfig struct{ Address string }

// Defaults.
const (
	DefaultSocket      = "/run/bgplb/router.sock"
	DefaultMaxPrefixes = 10000
	DefaultTable       = 254
	DefaultMetric      = 20
	DefaultGraceTime   = 120 * time.Second
	// DefaultBuckets gives every member of the largest ECMP set a bucket;
	// DefaultIdleTimer is the kernel's.
	DefaultBuckets   = 256
	DefaultIdleTimer = 120 * time.Second
	// DefaultProtocol is "bgp" in /etc/iproute2/rt_protos (186). FRR's
	// zebra writes proto bgp too: a router sharing a table with FRR must
	// pick another protocol, or another table.
	DefaultProtocol       = 186
	DefaultResyncInterval = 5 * time.Minute
	// DefaultMaxPeers bounds one dynamic range: a host on the LAN that
	// adds addresses to itself cannot open more sessions than this.
	DefaultMaxPeers = 1024
	// DefaultMaxSessions is room for 5,000 nodes and then some, while a
	// flood of connections still meets a limit.
	DefaultMaxSessions = 10000
	// DefaultBFDInterval and DefaultBFDMultiplier are BFDProfile's
	// defaults, FRR's and BIRD's too: 900 ms to detect a dead path.
	DefaultBFDInterval   = 300 * time.Millisecond
	DefaultBFDMultiplier = 3
	// DefaultRestartTime and DefaultStaleTime are FRR's defaults
	// (bgp graceful-restart restart-time, stalepath-time).
	DefaultRestartTime = 120 * time.Second
	DefaultStaleTime   = 360 * time.Second
)

// rawConfig mirrors the YAML; everything that needs parsing is a string, so
// every error can name its field and line.
type rawConfig struct {
	ASN              yaml.Node     `yaml:"asn"`
	RouterID         yaml.Node     `yaml:"routerID"`
	Listen           []yaml.Node   `yaml:"listen"`
	Neighbors        []rawNeighbor `yaml:"neighbors"`
	DynamicNeighbors []rawDynamic  `yaml:"dynamicNeighbors"`
	Import           rawImport     `yaml:"import"`
	FIB              rawFIB        `yaml:"fib"`
	Limits           struct {
		MaxSessions yaml.Node `yaml:"maxSessions"`
	} `yaml:"limits"`
	GracefulRestart *rawGR `yaml:"gracefulRestart"`
	API             struct {
		Socket yaml.Node `yaml:"socket"`
	} `yaml:"api"`
	Metrics struct {
		Address yaml.Node `yaml:"address"`
	} `yaml:"metrics"`
}

type rawTimers struct {
	HoldTime      yaml.Node `yaml:"holdTime"`
	KeepaliveTime yaml.Node `yaml:"keepaliveTime"`
	ConnectRetry  yaml.Node `yaml:"connectRetry"`
}

type rawNeighbor struct {
	Address       yaml.Node `yaml:"address"`
	Port          yaml.Node `yaml:"port"`
	PeerASN       yaml.Node `yaml:"peerASN"`
	Password      yaml.Node `yaml:"password"`
	Passive       yaml.Node `yaml:"passive"`
	Multihop      yaml.Node `yaml:"ebgpMultihop"`
	TTLSecurity   yaml.Node `yaml:"ttlSecurity"`
	SourceAddress yaml.Node `yaml:"sourceAddress"`
	SourcePort    yaml.Node `yaml:"sourcePort"`
	Description   yaml.Node `yaml:"description"`
	BFD           *rawBFD   `yaml:"bfd"`
	GR            *rawGR    `yaml:"gracefulRestart"`
	rawTimers     `yaml:",inline"`
}

type rawDynamic struct {
	Prefix      yaml.Node `yaml:"prefix"`
	PeerASN     yaml.Node `yaml:"peerASN"`
	Password    yaml.Node `yaml:"password"`
	MaxPeers    yaml.Node `yaml:"maxPeers"`
	TTLSecurity yaml.Node `yaml:"ttlSecurity"`
	BFD         *rawBFD   `yaml:"bfd"`
	GR          *rawGR    `yaml:"gracefulRestart"`
	rawTimers   `yaml:",inline"`
}

type rawGR struct {
	Enabled     yaml.Node `yaml:"enabled"`
	RestartTime yaml.Node `yaml:"restartTime"`
	StaleTime   yaml.Node `yaml:"staleTime"`
}

type rawBFD struct {
	MinTx      yaml.Node `yaml:"minTx"`
	MinRx      yaml.Node `yaml:"minRx"`
	Multiplier yaml.Node `yaml:"multiplier"`
	Passive    yaml.Node `yaml:"passive"`
}

type rawFamily struct {
	IPv4 yaml.Node `yaml:"ipv4"`
	IPv6 yaml.Node `yaml:"ipv6"`
}

type rawImport struct {
	Prefixes        []yaml.Node `yaml:"prefixes"`
	MinPrefixLength rawFamily   `yaml:"minPrefixLength"`
	MaxPrefixLength rawFamily   `yaml:"maxPrefixLength"`
	MaxPrefixes     yaml.Node   `yaml:"maxPrefixes"`
}

type rawFIB struct {
	Table          yaml.Node    `yaml:"table"`
	Metric         yaml.Node    `yaml:"metric"`
	ECMP           yaml.Node    `yaml:"ecmp"`
	GraceTime      yaml.Node    `yaml:"graceTime"`
	NextHopObjects yaml.Node    `yaml:"nextHopObjects"`
	Protocol       yaml.Node    `yaml:"protocol"`
	ResyncInterval yaml.Node    `yaml:"resyncInterval"`
	Resilient      rawResilient `yaml:"resilient"`
}

type rawResilient struct {
	Enabled         yaml.Node `yaml:"enabled"`
	Buckets         yaml.Node `yaml:"buckets"`
	IdleTimer       yaml.Node `yaml:"idleTimer"`
	UnbalancedTimer yaml.Node `yaml:"unbalancedTimer"`
}

// FieldError is one problem in a config file, located by field and line.
type FieldError struct {
	File  string
	Line  int // 0 when the field is missing
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}

// ConfigError lists every problem found in one config file.
type ConfigError struct{ Errs []*FieldError }

func (e *ConfigError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, f := range e.Errs {
		msgs[i] = f.Error()
	}
	return "invalid config: " + strings.Join(msgs, "; ")
}

// Unwrap lets errors.As find each FieldError.
func (e *ConfigError) Unwrap() []error {
	errs := make([]error, len(e.Errs))
	for i, f := range e.Errs {
		errs[i] = f
	}
	return errs
}

// LoadFile reads and validates a config file.
func LoadFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, b)
}

// Parse validates YAML config text; name is used in error messages.
func Parse(name string, text []byte) (*Config, error) {
	var doc yaml.Node
	// An empty file is io.EOF: go on, so it reports its missing fields.
	if err := yaml.NewDecoder(bytes.NewReader(text)).Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, &ConfigError{[]*FieldError{yamlError(name, err)}}
	}
	// Unknown keys are listed with the other mistakes; a value of the
	// wrong kind stops here, since nothing below it can be read.
	shape := checkShape(name, &doc)
	var raw rawConfig
	if doc.Kind != 0 {
		if err := doc.Decode(&raw); err != nil {
			if len(shape) == 0 {
				shape = append(shape, yamlError(name, err))
			}
			return nil, &ConfigError{shape}
		}
	}
	b := builder{file: name, protos: systemProtos()}
	cfg := b.config(&raw)
	if errs := append(shape, b.errs...); len(errs) > 0 {
		slices.SortStableFunc(errs, byLine)
		return nil, &ConfigError{errs}
	}
	return cfg, nil
}

// byLine orders errors as the file does; those of missing fields, which
// have no line, come last.
func byLine(x, y *FieldError) int {
	if (x.Line == 0) != (y.Line == 0) {
		if x.Line == 0 {
			return 1
		}
		return -1
	}
	return cmp.Compare(x.Line, y.Line)
}

// yamlError turns a YAML syntax error into a FieldError.
func yamlError(file string, err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ":"); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, strings.TrimSpace(after)
			}
		}
	}
	return &FieldError{File: file, Line: line, Field: "(file)", Msg: msg}
}
