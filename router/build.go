package router

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bgplb/bgplb/fib"
)

// builder converts the raw YAML nodes into a Config, collecting every
// problem with its field path and line rather than stopping at the first.
type builder struct {
	file   string
	protos map[string]uint8 // route protocol names, from iproute2's tables
	errs   []*FieldError
}

func (b *builder) fail(n *yaml.Node, field, format string, args ...any) {
	b.errs = append(b.errs, &FieldError{File: b.file, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func missing(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// scalar returns n's text, failing when n is not a scalar.
func (b *builder) scalar(n *yaml.Node, field string) (string, bool) {
	if missing(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		b.fail(n, field, "must be a single value")
		return "", false
	}
	return n.Value, true
}

func (b *builder) uint(n *yaml.Node, field string, min, max uint64, def uint64) uint64 {
	s, ok := b.scalar(n, field)
	if !ok {
		return def
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v < min || v > max {
		b.fail(n, field, "%q is not a whole number in %d..%d", s, min, max)
		return def
	}
	return v
}

func (b *builder) required(n *yaml.Node, field string) bool {
	if missing(n) {
		b.fail(n, field, "is required")
		return false
	}
	return true
}

func (b *builder) asn(n *yaml.Node, field string) uint32 {
	if !b.required(n, field) {
		return 0
	}
	return uint32(b.uint(n, field, 1, 1<<32-1, 0))
}

func (b *builder) addr(n *yaml.Node, field string) netip.Addr {
	s, ok := b.scalar(n, field)
	if !ok {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		b.fail(n, field, "%q is not an IP address", s)
		return netip.Addr{}
	}
	return a
}

func (b *builder) prefix(n *yaml.Node, field string) netip.Prefix {
	s, ok := b.scalar(n, field)
	if !ok {
		b.required(n, field)
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		b.fail(n, field, "%q is not a prefix like 203.0.113.0/24", s)
		return netip.Prefix{}
	}
	if p != p.Masked() {
		b.fail(n, field, "%s has host bits set (did you mean %s?)", p, p.Masked())
		return netip.Prefix{}
	}
	return p
}

func (b *builder) bool(n *yaml.Node, field string, def bool) bool {
	s, ok := b.scalar(n, field)
	if !ok {
		return def
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		b.fail(n, field, "%q is not true or false", s)
		return def
	}
	return v
}

func (b *builder) str(n *yaml.Node, field, def string) string {
	s, ok := b.scalar(n, field)
	if !ok {
		return def
	}
	return s
}

// duration reads "90s", "1m30s" or a bare number of seconds.
func (b *builder) duration(n *yaml.Node, field string, def time.Duration) time.Duration {
	s, ok := b.scalar(n, field)
	if !ok {
		return def
	}
	if secs, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		b.fail(n, field, "%q is not a duration like 90s", s)
		return def
	}
	return d
}

func (b *builder) timers(r *rawTimers, field string) Timers {
	errs := len(b.errs)
	t := Timers{Hold: b.duration(&r.HoldTime, field+".holdTime", 0)}
	// RFC 4271 §4.2: a hold time is 0 or at least three seconds; 0 is
	// said, not left out, and turns the hold timer and keepalives off.
	t.NoHold = t.Hold == 0 && !missing(&r.HoldTime) && len(b.errs) == errs
	t.Keepalive = b.duration(&r.KeepaliveTime, field+".keepaliveTime", 0)
	t.ConnectRetry = b.duration(&r.ConnectRetry, field+".connectRetry", 0)
	if t.Hold != 0 && t.Hold < 3*time.Second {
		b.fail(&r.HoldTime, field+".holdTime", "%s: must be 0 or at least 3s", t.Hold)
	}
	if t.NoHold && t.Keepalive != 0 {
		b.fail(&r.KeepaliveTime, field+".keepaliveTime", "%s: holdTime 0 sends no keepalives", t.Keepalive)
	}
	if t.Hold != 0 && t.Keepalive > t.Hold {
		b.fail(&r.KeepaliveTime, field+".keepaliveTime", "%s exceeds the hold time %s", t.Keepalive, t.Hold)
	}
	return t
}

// protocol reads a kernel route protocol: a name from iproute2's rt_protos
// or a number; 0 to 4 belong to the kernel and to static routes.
func (b *builder) protocol(n *yaml.Node, field string, def uint8) uint8 {
	s, ok := b.scalar(n, field)
	if !ok {
		return def
	}
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		p, known := b.protos[s]
		if !known {
			b.fail(n, field, "%q is neither a number in 5..255 nor a protocol name of /etc/iproute2/rt_protos", s)
			return def
		}
		v = uint64(p)
	}
	if v <= 4 {
		b.fail(n, field, "%s: protocols 0 to 4 belong to the kernel and static routes", s)
		return def
	}
	return uint8(v)
}

// resilient reads fib.resilient. The kernel takes its timers in 1/100 s
// and converts them to its own ticks: whole seconds survive any HZ.
func (b *builder) resilient(r *rawResilient) ResilientConfig {
	c := ResilientConfig{
		Enabled:         b.bool(&r.Enabled, "fib.resilient.enabled", true),
		Buckets:         int(b.uint(&r.Buckets, "fib.resilient.buckets", fib.MinBuckets, fib.MaxBuckets, DefaultBuckets)),
		IdleTimer:       b.duration(&r.IdleTimer, "fib.resilient.idleTimer", DefaultIdleTimer),
		UnbalancedTimer: b.duration(&r.UnbalancedTimer, "fib.resilient.unbalancedTimer", 0),
	}
	for _, t := range []struct {
		n     *yaml.Node
		field string
		d     time.Duration
	}{
		{&r.IdleTimer, "fib.resilient.idleTimer", c.IdleTimer},
		{&r.UnbalancedTimer, "fib.resilient.unbalancedTimer", c.UnbalancedTimer},
	} {
		if t.d%time.Second != 0 || t.d > 1000*time.Hour {
			b.fail(t.n, t.field, "%s: must be whole seconds, at most 1000h", t.d)
		}
	}
	if c.IdleTimer == 0 && !missing(&r.IdleTimer) {
		b.fail(&r.IdleTimer, "fib.resilient.idleTimer", "0: a bucket must be idle for at least 1s to move")
	}
	return c
}

func (b *builder) config(r *rawConfig) *Config {
	c := &Config{ASN: b.asn(&r.ASN, "asn")}
	if b.required(&r.RouterID, "routerID") {
		if c.RouterID = b.addr(&r.RouterID, "routerID"); c.RouterID.IsValid() && !c.RouterID.Is4() {
			b.fail(&r.RouterID, "routerID", "%s: a router ID is an IPv4 address", c.RouterID)
		}
	}
	for i := range r.Listen {
		n, field := &r.Listen[i], fmt.Sprintf("listen[%d]", i)
		if s, ok := b.scalar(n, field); ok {
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				b.fail(n, field, "%q is not an address:port like \"0.0.0.0:179\" or \"[::]:179\"", s)
				continue
			}
			c.Listen = append(c.Listen, ap)
		}
	}
	if r.Listen == nil {
		c.Listen = []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:179"), netip.MustParseAddrPort("[::]:179")}
	}
	c.GracefulRestart = b.gracefulRestart(r.GracefulRestart, "gracefulRestart",
		GracefulRestart{Enabled: true, RestartTime: DefaultRestartTime, StaleTime: DefaultStaleTime})
	b.neighbors(c, r)
	c.Import = b.imports(&r.Import)
	c.FIB = FIBConfig{
		Table:          int(b.uint(&r.FIB.Table, "fib.table", 1, 1<<32-1, DefaultTable)),
		Metric:         uint32(b.uint(&r.FIB.Metric, "fib.metric", 0, 1<<32-1, DefaultMetric)),
		ECMP:           b.bool(&r.FIB.ECMP, "fib.ecmp", true),
		GraceTime:      b.duration(&r.FIB.GraceTime, "fib.graceTime", DefaultGraceTime),
		NextHopObjects: b.str(&r.FIB.NextHopObjects, "fib.nextHopObjects", "auto"),
		Protocol:       b.protocol(&r.FIB.Protocol, "fib.protocol", DefaultProtocol),
	}
	errs := len(b.errs)
	c.FIB.ResyncInterval = b.duration(&r.FIB.ResyncInterval, "fib.resyncInterval", DefaultResyncInterval)
	if c.FIB.ResyncInterval < 10*time.Second && len(b.errs) == errs {
		b.fail(&r.FIB.ResyncInterval, "fib.resyncInterval", "%s: must be at least 10s", c.FIB.ResyncInterval)
	}
	c.FIB.Resilient = b.resilient(&r.FIB.Resilient)
	c.Limits.MaxSessions = int(b.uint(&r.Limits.MaxSessions, "limits.maxSessions", 1, 1<<31-1, DefaultMaxSessions))
	if len(c.Neighbors) > c.Limits.MaxSessions {
		b.fail(&r.Limits.MaxSessions, "limits.maxSessions", "%d leaves no room for the %d static neighbors", c.Limits.MaxSessions, len(c.Neighbors))
	}
	switch c.FIB.NextHopObjects {
	case "auto", "on", "off":
	default:
		b.fail(&r.FIB.NextHopObjects, "fib.nextHopObjects", "%q: must be auto, on or off", c.FIB.NextHopObjects)
	}
	c.API.Socket = b.str(&r.API.Socket, "api.socket", DefaultSocket)
	c.Metrics.Address = b.str(&r.Metrics.Address, "metrics.address", "")
	if c.Metrics.Address != "" {
		if _, err := netip.ParseAddrPort(c.Metrics.Address); err != nil {
			b.fail(&r.Metrics.Address, "metrics.address", "%q is not an address:port like \"127.0.0.1:9473\"", c.Metrics.Address)
		}
	}
	return c
}

func (b *builder) neighbors(c *Config, r *rawConfig) {
	seen := map[netip.Addr]string{}
	for i := range r.Neighbors {
		rn, field := &r.Neighbors[i], fmt.Sprintf("neighbors[%d]", i)
		n := Neighbor{
			Port:            uint16(b.uint(&rn.Port, field+".port", 1, 65535, 179)),
			PeerASN:         b.asn(&rn.PeerASN, field+".peerASN"),
			Password:        b.str(&rn.Password, field+".password", ""),
			Passive:         b.bool(&rn.Passive, field+".passive", false),
			Multihop:        uint8(b.uint(&rn.Multihop, field+".ebgpMultihop", 1, 255, 0)),
			TTLSecurity:     b.bool(&rn.TTLSecurity, field+".ttlSecurity", false),
			SourceAddress:   b.addr(&rn.SourceAddress, field+".sourceAddress"),
			SourcePort:      uint16(b.uint(&rn.SourcePort, field+".sourcePort", 1, 65535, 0)),
			Description:     b.str(&rn.Description, field+".description", ""),
			Timers:          b.timers(&rn.rawTimers, field),
			BFD:             b.bfd(rn.BFD, field+".bfd"),
			GracefulRestart: b.gracefulRestart(rn.GR, field+".gracefulRestart", c.GracefulRestart),
		}
		if b.required(&rn.Address, field+".address") {
			n.Address = b.addr(&rn.Address, field+".address")
		}
		if len(n.Password) > 80 {
			// The kernel's TCP_MD5SIG key holds at most 80 bytes.
			b.fail(&rn.Password, field+".password", "longer than 80 bytes")
		}
		if n.Multihop != 0 && n.TTLSecurity {
			b.fail(&rn.TTLSecurity, field+".ttlSecurity", "cannot be combined with ebgpMultihop")
		}
		if n.SourceAddress.IsValid() && n.Address.IsValid() && n.SourceAddress.Is4() != n.Address.Is4() {
			b.fail(&rn.SourceAddress, field+".sourceAddress", "%s is not of the same family as address %s", n.SourceAddress, n.Address)
		}
		if prev, dup := seen[n.Address]; dup && n.Address.IsValid() {
			b.fail(&rn.Address, field+".address", "%s is already configured in %s", n.Address, prev)
		}
		seen[n.Address] = field
		c.Neighbors = append(c.Neighbors, n)
	}
	for i := range r.DynamicNeighbors {
		rd, field := &r.DynamicNeighbors[i], fmt.Sprintf("dynamicNeighbors[%d]", i)
		d := DynamicNeighbor{
			Prefix:          b.prefix(&rd.Prefix, field+".prefix"),
			PeerASN:         b.asn(&rd.PeerASN, field+".peerASN"),
			Password:        b.str(&rd.Password, field+".password", ""),
			MaxPeers:        int(b.uint(&rd.MaxPeers, field+".maxPeers", 1, 1<<31-1, DefaultMaxPeers)),
			TTLSecurity:     b.bool(&rd.TTLSecurity, field+".ttlSecurity", false),
			Timers:          b.timers(&rd.rawTimers, field),
			BFD:             b.bfd(rd.BFD, field+".bfd"),
			GracefulRestart: b.gracefulRestart(rd.GR, field+".gracefulRestart", c.GracefulRestart),
		}
		for j, prev := range c.DynamicNeighbors[:i] {
			if d.Prefix.IsValid() && prev.Prefix.IsValid() && d.Prefix.Overlaps(prev.Prefix) {
				b.fail(&rd.Prefix, field+".prefix", "%s overlaps dynamicNeighbors[%d].prefix %s", d.Prefix, j, prev.Prefix)
			}
		}
		c.DynamicNeighbors = append(c.DynamicNeighbors, d)
	}
}

// BFD intervals the router accepts: bfdd's range. Faster than 10 ms is
// more than a Go timer on a busy host keeps; slower than a minute is no
// faster than BGP's own hold timer.
const (
	minBFDInterval = 10 * time.Millisecond
	maxBFDInterval = time.Minute
)

// bfd reads a bfd block; nil (no block) is no BFD, an empty block takes the
// defaults.
func (b *builder) bfd(r *rawBFD, field string) BFD {
	if r == nil {
		return BFD{}
	}
	interval := func(n *yaml.Node, name string) time.Duration {
		errs := len(b.errs)
		d := b.duration(n, field+"."+name, DefaultBFDInterval)
		if len(b.errs) == errs && (d < minBFDInterval || d > maxBFDInterval) {
			hint := ""
			if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
				hint = " (a bare number is seconds: write units, 300ms)"
			}
			b.fail(n, field+"."+name, "%s: must be between %s and %s%s", d, minBFDInterval, maxBFDInterval, hint)
		}
		return d
	}
	return BFD{
		Enabled:    true,
		MinTx:      interval(&r.MinTx, "minTx"),
		MinRx:      interval(&r.MinRx, "minRx"),
		Multiplier: uint8(b.uint(&r.Multiplier, field+".multiplier", 1, 255, DefaultBFDMultiplier)),
		Passive:    b.bool(&r.Passive, field+".passive", false),
	}
}

// maxGRTime is the longest restart or stale time: the capability's 12 bits
// of seconds.
const maxGRTime = 4095 * time.Second

// gracefulRestart reads a gracefulRestart block; the fields it leaves out
// are def's (the top-level block's, for a neighbour or range).
func (b *builder) gracefulRestart(r *rawGR, field string, def GracefulRestart) GracefulRestart {
	if r == nil {
		return def
	}
	timer := func(n *yaml.Node, name string, def time.Duration) time.Duration {
		errs := len(b.errs)
		d := b.duration(n, field+"."+name, def)
		if len(b.errs) == errs && (d < time.Second || d > maxGRTime) {
			b.fail(n, field+"."+name, "%s: must be between 1s and %s", d, maxGRTime)
			return def
		}
		return d
	}
	return GracefulRestart{
		Enabled:     b.bool(&r.Enabled, field+".enabled", def.Enabled),
		RestartTime: timer(&r.RestartTime, "restartTime", def.RestartTime),
		StaleTime:   timer(&r.StaleTime, "staleTime", def.StaleTime),
	}
}

func (b *builder) imports(r *rawImport) Import {
	im := Import{
		MinPrefixLength: PerFamily{
			int(b.uint(&r.MinPrefixLength.IPv4, "import.minPrefixLength.ipv4", 0, 32, 32)),
			int(b.uint(&r.MinPrefixLength.IPv6, "import.minPrefixLength.ipv6", 0, 128, 128))},
		MaxPrefixLength: PerFamily{
			int(b.uint(&r.MaxPrefixLength.IPv4, "import.maxPrefixLength.ipv4", 0, 32, 32)),
			int(b.uint(&r.MaxPrefixLength.IPv6, "import.maxPrefixLength.ipv6", 0, 128, 128))},
		MaxPrefixes: int(b.uint(&r.MaxPrefixes, "import.maxPrefixes", 1, 1<<31-1, DefaultMaxPrefixes)),
	}
	if im.MinPrefixLength.IPv4 > im.MaxPrefixLength.IPv4 {
		b.fail(&r.MinPrefixLength.IPv4, "import.minPrefixLength.ipv4", "%d exceeds maxPrefixLength.ipv4 %d", im.MinPrefixLength.IPv4, im.MaxPrefixLength.IPv4)
	}
	if im.MinPrefixLength.IPv6 > im.MaxPrefixLength.IPv6 {
		b.fail(&r.MinPrefixLength.IPv6, "import.minPrefixLength.ipv6", "%d exceeds maxPrefixLength.ipv6 %d", im.MinPrefixLength.IPv6, im.MaxPrefixLength.IPv6)
	}
	for i := range r.Prefixes {
		if p := b.prefix(&r.Prefixes[i], fmt.Sprintf("import.prefixes[%d]", i)); p.IsValid() {
			im.Prefixes = append(im.Prefixes, p)
		}
	}
	if len(r.Prefixes) == 0 {
		// Guards are on by default: with no ranges nothing would be
		// accepted, which is never what an operator meant.
		b.errs = append(b.errs, &FieldError{File: b.file, Field: "import.prefixes",
			Msg: "is required: list the service pools whose routes may be accepted"})
	}
	return im
}
