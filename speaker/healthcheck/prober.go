package healthcheck

import (
	"context"
	"io"
	"log/slog"
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
// node's addresses.
type Target struct {
	Service lbmodel.Key
	Addr    netip.AddrPort
}

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
	mu      sync.Mutex
	started bool
	targets map[Target]*target

	passed, refused, failed atomic.Uint64
	rises, falls            atomic.Uint64
}

type target struct {
	stop  context.CancelFunc
	track Track // under Prober.mu
}

// New returns a prober whose probes run until ctx ends. onChange is called
// (from a probe's goroutine) whenever a target's verdict or reason changes;
// it must not block. A Timeout of 0 is DefaultTimeout; thresholds below 1
// act as 1.
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
	return &Prober{cfg: cfg, log: log, onChange: onChange, ctx: ctx, targets: map[Target]*target{},
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Set makes ts the targets probed: new ones start pending and are probed at
// once, gone ones stop. Targets of the first Set are trusted while pending
// (see the package documentation).
func (p *Prober) Set(ts []Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return
	}
	want := make(map[Target]bool, len(ts))
	for _, t := range ts {
		want[t] = true
	}
	for t, tg := range p.targets {
		if !want[t] {
			tg.stop()
			delete(p.targets, t)
		}
	}
	for t := range want {
		if _, ok := p.targets[t]; ok {
			continue
		}
		ctx, stop := context.WithCancel(p.ctx)
		tg := &target{stop: stop, track: Track{Trusted: !p.started}}
		p.targets[t] = tg
		p.wg.Go(func() { p.loop(ctx, t, tg) })
	}
	p.started = true
}

// Reason says why target t keeps the node from announcing its Service, ""
// when it passes or is not probed.
func (p *Prober) Reason(t Target) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tg, ok := p.targets[t]; ok {
		return tg.track.Reason(t.Addr)
	}
	return ""
}

// Wait waits for the probes to end, once the context given to New has.
func (p *Prober) Wait() { p.wg.Wait() }

func (p *Prober) loop(ctx context.Context, t Target, tg *target) {
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		o := p.probe(ctx, t.Addr)
		if ctx.Err() != nil {
			return
		}
		next := p.cfg.Interval
		if p.record(t, tg, o) == Pending {
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
// or reason changed, and returns the target's state.
func (p *Prober) record(t Target, tg *target, o Outcome) State {
	switch {
	case o.Refused:
		p.refused.Add(1)
	case !o.Pass:
		p.failed.Add(1)
	default:
		p.passed.Add(1)
	}
	p.mu.Lock()
	if p.targets[t] != tg { // removed meanwhile
		p.mu.Unlock()
		return Pending
	}
	was := tg.track
	tg.track = was.Next(o, p.cfg.Thresholds)
	now := tg.track
	p.mu.Unlock()
	if now.State != was.State {
		if now.State == Up {
			p.rises.Add(1)
		} else {
			p.falls.Add(1)
		}
		p.log.Info("kube-proxy health check", "service", t.Service.String(), "addr", t.Addr, "state", now.State.String(),
			"detail", now.Last.Detail)
	}
	if was.Passes() != now.Passes() || now.Reason(t.Addr) != was.Reason(t.Addr) {
		p.onChange()
	}
	return now.State
}

// Stats are the prober's counters, for metrics.
type Stats struct {
	// Targets counts the targets per state.
	Targets map[State]int
	// Passed, Refused and Failed count the probes that passed, found
	// nothing listening (and passed), and failed.
	Passed, Refused, Failed uint64
	// Rises and Falls count the changes of state to up and to down.
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
