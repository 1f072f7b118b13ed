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
// Interval. The zero Schedule means Repeats 5, Interval 250ms: sends at 0,
// .25, .75, 1.75, 3.75 and 7.75 s. Linux ignores an update of a neighbour
// entry younger than its locktime (1 s) unless it takes it for gratuitous,
// and a switch or host may miss one broadcast, which is why one is never
// enough. A negative Repeats sends just the first.
type Schedule struct {
	Repeats  int
	Interval time.Duration
}

// DefaultSchedule is what the zero Schedule means.
var DefaultSchedule = Schedule{Repeats: 5, Interval: 250 * time.Millisecond}

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
	// Gratuitous is how each new Answer, and each Announce, announces itself.
	Gratuitous Schedule
}

// AnswerStatus is the state of one wanted Answer.
type AnswerStatus struct {
	Answer
	MAC        net.HardwareAddr // empty while the interface could not be opened
	Since      time.Time        // when it was first wanted (answered, unless LastError)
	Answered   uint64           // requests answered
	Gratuitous uint64           // gratuitous ARP / unsolicited NA sent
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
	lastErr      atomic.Pointer[error]
	stopAnnounce context.CancelFunc // guarded by Announcer.mu
}

// failure is a wanted Answer that could not be set up; Set retries it.
type failure struct {
	since time.Time
	err   error
}

// Announcer answers ARP and NDP for a set of Answers. Its sockets live in
// the network namespace of the thread that called New.
type Announcer struct {
	log   *slog.Logger
	sched Schedule
	ns    netnsHandle
	ctx   context.Context // ends at Close; parent of every goroutine
	stop  context.CancelFunc
	wg    sync.WaitGroup // announcement goroutines; links wait for their own

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
	ns, err := currentNetns()
	ctx, stop := context.WithCancel(context.Background())
	return &Announcer{
		log: log, sched: o.Gratuitous, ns: ns, nsErr: err, ctx: ctx, stop: stop,
		links: map[linkKey]*link{}, pairs: map[Answer]*pair{}, failed: map[Answer]failure{},
	}
}

var errClosed = errors.New("l2: announcer closed")

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
		var err error
		if l, err = openLink(a.ctx, key, a.ns, a.log); err != nil {
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
	a.announceLocked(p)
	return nil
}

func (a *Announcer) removeLocked(p *pair) error {
	p.stopAnnounce()
	delete(a.pairs, p.key)
	err := p.link.remove(p.key.Addr)
	if p.link.empty() {
		delete(a.links, p.link.key)
		err = errors.Join(err, p.link.close())
	}
	a.log.Info("stopped answering", "addr", p.key.Addr, "interface", p.key.Interface)
	return err
}

// Announce sends the gratuitous schedule for addr again, on every
// interface it is answered on, restarting a schedule under way. It is for
// a takeover of an address this node already answered for (a lease that
// flapped back).
func (a *Announcer) Announce(addr netip.Addr) {
	addr = addr.Unmap()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, p := range a.pairs {
		if k.Addr == addr {
			a.announceLocked(p)
		}
	}
}

// announceLocked (re)starts p's gratuitous schedule in a goroutine owned
// by the Announcer; removing p or Close stops it.
func (a *Announcer) announceLocked(p *pair) {
	if p.stopAnnounce != nil {
		p.stopAnnounce()
	}
	ctx, stop := context.WithCancel(a.ctx)
	p.stopAnnounce = stop
	offs := a.sched.Offsets()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer stop()
		start := time.Now()
		t := time.NewTimer(0)
		defer t.Stop()
		for _, off := range offs {
			t.Reset(time.Until(start.Add(off)))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p.link.announce(p)
		}
	}()
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
			Answered: p.answered.Load(), Gratuitous: p.gratuitous.Load(), LastError: err,
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
	a.wg.Wait()
	errs = append(errs, a.ns.close())
	return errors.Join(errs...)
}
