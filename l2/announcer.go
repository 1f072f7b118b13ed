package l2

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Answer is one address answered for on one interface.
type Answer struct {
	Addr      netip.Addr
	Interface string
}

// Schedule says how many gratuitous ARP / unsolicited NA a new Answer
// sends and when: one at once, then Repeats more, the gaps doubling from
// Interval. The zero Schedule means DefaultSchedule. A negative Repeats
// sends just the first.
type Schedule struct {
	Repeats  int
	Interval time.Duration
}

// DefaultSchedule is what the zero Schedule means for gratuitous ARP:
// sends at 0, .25, .75, 1.75, 3.75 and 7.75 s. Linux ignores an update of
// a neighbour entry younger than its locktime (1 s) unless it takes it for
// gratuitous, and a switch or host may miss one broadcast, which is why
// one is never enough. (RFC 5227's ANNOUNCE_NUM is a minimum, no ceiling.)
var DefaultSchedule = Schedule{Repeats: 5, Interval: 250 * time.Millisecond}

// DefaultNASchedule is what the zero Schedule means for unsolicited
// neighbour advertisements: sends at 0, 1 and 3 s. RFC 4861 section 7.2.6
// allows at most MAX_NEIGHBOR_ADVERTISEMENT (3), at least RetransTimer
// (1 s) apart; Linux has no locktime for an advertisement with the
// override flag, so the first one already updates a client that hears it.
var DefaultNASchedule = Schedule{Repeats: maxUnsolicitedNA - 1, Interval: retransTimer}

// RFC 4861 section 10.
const (
	maxUnsolicitedNA = 3
	retransTimer     = time.Second
)

// forNDP is s for unsolicited NA: the default for the zero Schedule, and
// otherwise clamped to what RFC 4861 allows. The gaps only grow from
// Interval, so raising it to RetransTimer is enough.
func (s Schedule) forNDP() Schedule {
	if s == (Schedule{}) {
		return DefaultNASchedule
	}
	s.Repeats = min(s.Repeats, maxUnsolicitedNA-1)
	if s.Repeats > 0 {
		s.Interval = max(s.Interval, retransTimer)
	}
	return s
}

// Offsets returns when each announcement is sent, from the first.
func (s Schedule) Offsets() []time.Duration {
	if s == (Schedule{}) {
		s = DefaultSchedule
	}
	offs := []time.Duration{0}
	gap := max(s.Interval, 0)
	for range max(s.Repeats, 0) {
		offs = append(offs, offs[len(offs)-1]+gap)
		gap *= 2
	}
	return offs
}

// Options configures an Announcer.
type Options struct {
	Log *slog.Logger // nil discards
	// Gratuitous is how each new IPv4 Answer announces itself.
	Gratuitous Schedule
	// Unsolicited is how each new IPv6 Answer announces itself. More than
	// RFC 4861 allows (3 sends, 1 s apart) is cut down to it.
	Unsolicited Schedule
}

// AnswerStatus is the state of one wanted Answer.
type AnswerStatus struct {
	Answer
	MAC        net.HardwareAddr // empty while the interface could not be opened
	Since      time.Time        // when it was first wanted (answered, unless LastError)
	Answered   uint64           // requests answered
	Gratuitous uint64           // gratuitous ARP / unsolicited NA sent
	Dropped    uint64           // answers and announcements dropped, the send buffer full
	Fenced     uint64           // answers and announcements not sent: past the fence (SetFence)
	LastError  error            // the last failure to open, read, join or send; nil once healed
}

// pair is one answered Answer. The counters are written by the link's
// reader and the announcement goroutine, read by Status.
type pair struct {
	key          Answer
	link         *link
	since        time.Time
	answered     atomic.Uint64
	gratuitous   atomic.Uint64
	dropped      atomic.Uint64
	fenced       atomic.Uint64
	lastErr      atomic.Pointer[error]
	stopAnnounce context.CancelFunc // guarded by link.mu
}

// failure is a wanted Answer that could not be set up; Set retries it.
type failure struct {
	since time.Time
	err   error
}

// Announcer answers ARP and NDP for a set of Answers. Its sockets live in
// the network namespace of the thread that called New.
type Announcer struct {
	log      *slog.Logger
	arp, ndp []time.Duration // announcement offsets per family
	ns       netnsHandle
	ctx      context.Context // ends at Close; parent of every goroutine
	stop     context.CancelFunc
	// fence, when set, is the instant from which nothing is sent any more
	// (SetFence); shared with every link.
	fence *atomic.Pointer[time.Time]

	mu     sync.Mutex // guards the fields below; never taken on the receive path
	links  map[linkKey]*link
	pairs  map[Answer]*pair
	failed map[Answer]failure
	closed bool
	nsErr  error
}

// New returns an Announcer answering for nothing.
func New(o Options) *Announcer {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if n := o.Unsolicited.forNDP(); n != o.Unsolicited && o.Unsolicited != (Schedule{}) {
		log.Warn("unsolicited NA schedule cut down to RFC 4861's", "asked", o.Unsolicited, "using", n)
	}
	ns, err := currentNetns()
	ctx, stop := context.WithCancel(context.Background())
	return &Announcer{
		log: log, arp: o.Gratuitous.Offsets(), ndp: o.Unsolicited.forNDP().Offsets(),
		ns: ns, nsErr: err, ctx: ctx, stop: stop, fence: new(atomic.Pointer[time.Time]),
		links: map[linkKey]*link{}, pairs: map[Answer]*pair{}, failed: map[Answer]failure{},
	}
}

var errClosed = errors.New("l2: announcer closed")

// SetFence sets the instant from which the Announcer sends nothing, no
// answer and no announcement, until a later SetFence moves it: the
// ownership of the addresses is valid until then (an election's lease).
// The check is made before every frame, so an owner whose lease ran out
// is silent even before its Set removes the addresses (a process stalled
// past the instant, a slow caller). The zero time removes the fence.
func (a *Announcer) SetFence(until time.Time) {
	if until.IsZero() {
		a.fence.Store(nil)
		return
	}
	a.fence.Store(&until)
}

// Set makes the answered set exactly want. New pairs answer at once and
// start the gratuitous schedule; pairs no longer wanted have stopped
// answering and announcing when Set returns. A pair whose interface is
// missing or cannot be opened is an error naming it (all joined); the
// others still work, and the next Set retries it.
func (a *Announcer) Set(want []Answer) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errClosed
	}
	if a.nsErr != nil {
		return a.nsErr
	}
	have := make([]Answer, 0, len(a.pairs))
	for k := range a.pairs {
		have = append(have, k)
	}
	add, remove := plan(have, want)
	var errs []error
	for _, k := range remove {
		errs = append(errs, a.removeLocked(a.pairs[k]))
	}
	// A failed pair was never answered, so it is in add if still wanted.
	retry := make(map[Answer]failure, len(a.failed))
	for _, k := range add {
		if f, ok := a.failed[k]; ok {
			retry[k] = f
		}
	}
	a.failed = retry
	for _, k := range add {
		if err := a.addLocked(k); err != nil {
			f, ok := a.failed[k]
			if !ok {
				f.since = time.Now()
			}
			f.err = err
			a.failed[k] = f
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func normal(w Answer) Answer { return Answer{w.Addr.Unmap(), w.Interface} }

// plan is what Set does to go from the answered pairs have to want: the
// pairs to add and to remove, each sorted; IPv4-mapped addresses in want
// are taken as IPv4 and duplicates count once.
func plan(have, want []Answer) (add, remove []Answer) {
	wanted := make(map[Answer]bool, len(want))
	for _, w := range want {
		wanted[normal(w)] = true
	}
	had := make(map[Answer]bool, len(have))
	for _, h := range have {
		had[h] = true
		if !wanted[h] {
			remove = append(remove, h)
		}
	}
	for w := range wanted {
		if !had[w] {
			add = append(add, w)
		}
	}
	slices.SortFunc(add, compareAnswers)
	slices.SortFunc(remove, compareAnswers)
	return add, remove
}

func compareAnswers(x, y Answer) int {
	if c := x.Addr.Compare(y.Addr); c != 0 {
		return c
	}
	return cmp.Compare(x.Interface, y.Interface)
}

func (a *Announcer) addLocked(k Answer) error {
	if !k.Addr.IsValid() || k.Addr.IsMulticast() || k.Addr.IsUnspecified() {
		return fmt.Errorf("l2: %s on %s: not a unicast address", k.Addr, k.Interface)
	}
	key := linkKey{iface: k.Interface, v6: k.Addr.Is6()}
	l := a.links[key]
	if l == nil {
		sched := a.arp
		if key.v6 {
			sched = a.ndp
		}
		var err error
		if l, err = openLink(a.ctx, key, a.ns, sched, a.fence, a.log); err != nil {
			return fmt.Errorf("l2: answer %s on %s: %w", k.Addr, k.Interface, err)
		}
		a.links[key] = l
	}
	p := &pair{key: k, link: l, since: time.Now()}
	if f, ok := a.failed[k]; ok {
		p.since = f.since
		delete(a.failed, k)
	}
	if err := l.add(p); err != nil {
		if l.empty() {
			delete(a.links, key)
			err = errors.Join(err, l.close())
		}
		return fmt.Errorf("l2: answer %s on %s: %w", k.Addr, k.Interface, err)
	}
	a.pairs[k] = p
	a.log.Info("answering", "addr", k.Addr, "interface", k.Interface)
	return nil
}

func (a *Announcer) removeLocked(p *pair) error {
	delete(a.pairs, p.key)
	err := p.link.remove(p.key.Addr)
	if p.link.empty() {
		delete(a.links, p.link.key)
		err = errors.Join(err, p.link.close())
	}
	a.log.Info("stopped answering", "addr", p.key.Addr, "interface", p.key.Interface)
	return err
}

// Status reports every wanted Answer, sorted by address and interface.
func (a *Announcer) Status() []AnswerStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]AnswerStatus, 0, len(a.pairs)+len(a.failed))
	for k, p := range a.pairs {
		mac, err := p.link.status()
		if e := p.lastErr.Load(); err == nil && e != nil {
			err = *e
		}
		out = append(out, AnswerStatus{
			Answer: k, MAC: net.HardwareAddr(mac[:]), Since: p.since,
			Answered: p.answered.Load(), Gratuitous: p.gratuitous.Load(), Dropped: p.dropped.Load(), Fenced: p.fenced.Load(),
			LastError: err,
		})
	}
	for k, f := range a.failed {
		out = append(out, AnswerStatus{Answer: k, Since: f.since, LastError: f.err})
	}
	slices.SortFunc(out, func(x, y AnswerStatus) int { return compareAnswers(x.Answer, y.Answer) })
	return out
}

// Close stops answering everywhere, stops every goroutine and closes every
// socket. It is idempotent.
func (a *Announcer) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.stop()
	var errs []error
	for k, l := range a.links {
		errs = append(errs, l.close())
		delete(a.links, k)
	}
	clear(a.pairs)
	clear(a.failed)
	a.mu.Unlock()
	errs = append(errs, a.ns.close())
	return errors.Join(errs...)
}
