package healthcheck

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Config sets the probes' pace and thresholds.
type Config struct {
	// Interval between the starts of two probes of one target.
	Interval time.Duration
	// Timeout of one probe (connect and answer).
	Timeout time.Duration
	// Thresholds: Rise, Fall, and NoServer (0: DefaultNoServer).
	Thresholds
}

// Defaults: a failed data plane is seen within Fall intervals (2 s), a
// recovered one within Rise; a probe is a loopback or LAN round trip, so a
// second without an answer is a failure in itself.
const (
	DefaultInterval = time.Second
	DefaultTimeout  = time.Second
	DefaultRise     = 2
	DefaultFall     = 2
)

// DefaultConfig is the speaker's default.
func DefaultConfig() Config {
	return Config{Interval: DefaultInterval, Timeout: DefaultTimeout, Thresholds: Thresholds{Rise: DefaultRise, Fall: DefaultFall}}
}

// Target is one probe: a Service's healthCheckNodePort on one of this
// node's addresses. A prober keeps one per Service and family: a target
// whose address changes (node addresses reordered, the port edited) keeps
// its state.
type Target struct {
	Service lbmodel.Key
	Addr    netip.AddrPort
	// Fallback: the Service's endpoints of Addr's family are the
	// serving-terminating fallback (lbmodel.Fallback), which kube-proxy's
	// health check does not count ([Outcome.Under]).
	Fallback bool
}

// key names a target in a prober: its Service and family.
type key struct {
	svc lbmodel.Key
	v6  bool
}

func (t Target) key() key { return key{t.Service, t.Addr.Addr().Is6()} }

// Prober probes a set of targets, each on a goroutine of its own, until
// its context ends ([Prober.Wait] waits for them).
type Prober struct {
	cfg      Config
	log      *slog.Logger
	onChange func()
	client   *http.Client
	ctx      context.Context
	wg       sync.WaitGroup

	// mu guards the fields below; started is set by the first Set.
	mu       sync.Mutex
	started  bool
	withheld map[lbmodel.Key]bool
	targets  map[key]*target

	passed, refused, failed atomic.Uint64
	rises, falls            atomic.Uint64
}

type target struct {
	stop context.CancelFunc
	// Under Prober.mu.
	addr     netip.AddrPort
	fallback bool
	track    Track
}

// Pace: a pending target is probed four times as often for its first
// fastProbes probes (two intervals), then at the interval: a Service whose
// kube-proxy never answers costs no more than any other.
const fastProbes = 8

// DefaultNoServer is Thresholds.NoServer when unset: a pending target
// refused for about ten intervals (8 fast probes, 8 at the interval).
const DefaultNoServer = 16

// New returns a prober whose probes run until ctx ends. onChange is called
// (from a probe's goroutine) whenever a target's verdict changes; it must
// not block. A Timeout of 0 is DefaultTimeout; Rise and Fall below 1 act as
// 1; NoServer 0 is DefaultNoServer, below 0 never.
func New(ctx context.Context, cfg Config, log *slog.Logger, onChange func()) *Prober {
	if log == nil {
		log = slog.Default()
	}
	if onChange == nil {
		onChange = func() {}
	}
	if cfg.Timeout <= 0 {
		// A probe without a deadline could hang on a half-open
		// connection, and its target would never change again.
		cfg.Timeout = DefaultTimeout
	}
	if cfg.NoServer == 0 {
		cfg.NoServer = DefaultNoServer
	}
	tr := &http.Transport{
		// The node's own port: never through a proxy from the environment.
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		// One connection per target, kept between probes: a thousand
		// Services probed every second would otherwise leave tens of
		// thousands of sockets in TIME_WAIT. kube-proxy closes them when
		// it closes the health check (or dies), and the next probe dials
		// again. One that goes unused (its target removed) is closed.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     2*cfg.Interval + cfg.Timeout,
		DisableCompression:  true,
	}
	return &Prober{cfg: cfg, log: log, onChange: onChange, ctx: ctx, targets: map[key]*target{},
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Withheld names, before the first Set, the Services an earlier run of the
// speaker withheld (their ServiceAnnouncement says why): their targets in
// the first Set start down rather than up. Later calls change nothing.
func (p *Prober) Withheld(svcs []lbmodel.Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return
	}
	p.withheld = make(map[lbmodel.Key]bool, len(svcs))
	for _, k := range svcs {
		p.withheld[k] = true
	}
}

// initial is the track a target k starts with (under p.mu).
func (p *Prober) initial(k key) Track {
	switch {
	case p.started:
		return Track{}
	case p.withheld[k.svc]:
		return Restored()
	}
	return Track{State: Up}
}

// Set makes ts the targets probed, one per Service and family (a later
// one of the same replaces an earlier): gone ones stop, and one whose
// address or fallback changed keeps its state. Targets of the first Set
// start up, or down for the Services given to Withheld, and are first
// probed at random within an interval; later ones start pending and are
// probed at once.
func (p *Prober) Set(ts []Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return
	}
	want := make(map[key]Target, len(ts))
	for _, t := range ts {
		want[t.key()] = t
	}
	for k, tg := range p.targets {
		if _, ok := want[k]; !ok {
			tg.stop()
			delete(p.targets, k)
		}
	}
	for k, t := range want {
		if tg, ok := p.targets[k]; ok {
			tg.addr, tg.fallback = t.Addr, t.Fallback
			continue
		}
		ctx, stop := context.WithCancel(p.ctx)
		tg := &target{stop: stop, addr: t.Addr, fallback: t.Fallback, track: p.initial(k)}
		p.targets[k] = tg
		// A pending target is probed at once; the many of a start are
		// spread over an interval so that they do not all fire together.
		var first time.Duration
		if tg.track.State != Pending && p.cfg.Interval > 0 {
			first = rand.N(p.cfg.Interval)
		}
		p.wg.Go(func() { p.loop(ctx, k, tg, first) })
	}
	p.started = true
}

// Verdict is the verdict on target t: of its track when probed, else of
// the track it would start with.
func (p *Prober) Verdict(t Target) Verdict {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tg, ok := p.targets[t.key()]; ok {
		return tg.track.Verdict(t.Addr)
	}
	return p.initial(t.key()).Verdict(t.Addr)
}

// Wait waits for the probes to end, once the context given to New has, and
// closes the connections they kept.
func (p *Prober) Wait() {
	p.wg.Wait()
	p.client.CloseIdleConnections()
}

func (p *Prober) loop(ctx context.Context, k key, tg *target, first time.Duration) {
	tick := time.NewTimer(first)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		p.mu.Lock()
		addr := tg.addr
		p.mu.Unlock()
		o := p.probe(ctx, addr)
		if ctx.Err() != nil {
			return
		}
		next := p.cfg.Interval
		if tr := p.record(k, tg, o); tr.State == Pending && tr.Probes < fastProbes {
			next /= 4
		}
		tick.Reset(max(next-time.Since(start), 0))
	}
}

// probe sends one GET to addr and classifies the answer.
func (p *Prober) probe(ctx context.Context, addr netip.AddrPort) Outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+"/", nil)
	if err != nil {
		return Classify(0, nil, err, p.cfg.Timeout)
	}
	req.Header.Set("User-Agent", "bgplb-speaker")
	resp, err := p.client.Do(req)
	if err != nil {
		return Classify(0, nil, err, p.cfg.Timeout)
	}
	defer resp.Body.Close()
	// kube-proxy's answer is about 150 bytes; read whole, the connection
	// is kept for the next probe.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return Classify(0, nil, err, p.cfg.Timeout)
	}
	return Classify(resp.StatusCode, body, nil, p.cfg.Timeout)
}

// record applies one outcome to the target's track, says when its verdict
// changed, and returns the track.
func (p *Prober) record(k key, tg *target, o Outcome) Track {
	p.mu.Lock()
	if p.targets[k] != tg { // removed meanwhile
		p.mu.Unlock()
		return Track{State: Up}
	}
	o = o.Under(tg.fallback)
	was := tg.track
	tg.track = was.Next(o, p.cfg.Thresholds)
	now, addr := tg.track, tg.addr
	p.mu.Unlock()
	switch {
	case o.Pass:
		p.passed.Add(1)
	case o.Refused:
		p.refused.Add(1)
	default:
		p.failed.Add(1)
	}
	if now.State != was.State {
		// A new target's first pass is no recovery.
		switch {
		case was.State == Down:
			p.rises.Add(1)
		case now.State == Down:
			p.falls.Add(1)
		}
		msg := "kube-proxy health check"
		if was.State == Pending && o.Refused {
			msg = "kube-proxy health check: nothing listens, taken for a node without a health check server; the endpoints decide"
		}
		p.log.Info(msg, "service", k.svc.String(), "addr", addr, "state", now.State.String(), "detail", now.Last.Detail)
	}
	if was.Verdict(addr) != now.Verdict(addr) {
		p.onChange()
	}
	return now
}

// Stats are the prober's counters, for metrics.
type Stats struct {
	// Targets counts the targets per state.
	Targets map[State]int
	// Passed, Refused and Failed count the probes that passed, found
	// nothing listening, and failed.
	Passed, Refused, Failed uint64
	// Rises and Falls count the changes of state from down to up and from
	// up to down (a new target's first pass is neither).
	Rises, Falls uint64
}

// Stats reads the counters.
func (p *Prober) Stats() Stats {
	s := Stats{Targets: map[State]int{Pending: 0, Up: 0, Down: 0},
		Passed: p.passed.Load(), Refused: p.refused.Load(), Failed: p.failed.Load(),
		Rises: p.rises.Load(), Falls: p.falls.Load()}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tg := range p.targets {
		s.Targets[tg.track.State]++
	}
	return s
}
