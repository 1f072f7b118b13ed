package speaker

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/l2"
	"github.com/bgplb/bgplb/speaker/l2owner"
	"github.com/bgplb/bgplb/speaker/plan"
	"github.com/bgplb/bgplb/view"
)

// EventL2Owner is the reason of the event a speaker records on a Service
// when its node takes one of the Service's addresses over in L2 mode.
const EventL2Owner = "L2Owner"

// l2Mode is the speaker's L2 side: the election (speaker/l2owner) says
// which addresses this node owns, the responder (l2) answers for them.
//
// The elector calls setOwned from its goroutine, the run goroutine calls
// setWants and refresh; mu guards what both touch. Answering follows the
// election at once, without waiting for the run loop: losing an address
// must stop the answers before the next owner starts (the elector calls
// setOwned before it hands an address over).
type l2Mode struct {
	log  *slog.Logger
	node string
	el   *l2owner.Elector
	ann  *l2.Announcer
	// poke asks the run loop for a report; event records an event.
	poke  func()
	event func(svc lbmodel.Key, note string)

	mu    sync.Mutex
	wants map[netip.Addr]plan.L2Want
	owned []netip.Addr
	since map[netip.Addr]time.Time
	// errs are, per owned address, why it is not answered somewhere;
	// setErr the last error of the responder, logged once.
	errs   map[netip.Addr]string
	setErr string
	// ifs are the node's interfaces as last listed (listing is not free
	// on a node with hundreds of them, so it happens on the run loop's
	// tick, outside mu, and never on the path that stops answers);
	// ifaces lists them (l2.Interfaces): a test's fake.
	ifs    []l2.Interface
	listed bool
	ifaces func() ([]l2.Interface, error)
	// takeovers counts the addresses this node took, for the metrics.
	takeovers atomic.Uint64
}

// L2Timing is how fast L2 ownership moves (l2owner.Config).
type L2Timing struct {
	// LeaseDuration is how long a node's heartbeat holds its addresses
	// once it stops renewing: the failover time after a node dies.
	LeaseDuration time.Duration
	// RenewInterval is how often each node renews its heartbeat: its
	// whole API load in L2 mode, whatever the number of addresses.
	RenewInterval time.Duration
}

func newL2Mode(cfg *rest.Config, o Options, poke func(), event func(lbmodel.Key, string)) (*l2Mode, error) {
	m := &l2Mode{
		log: o.Log.With("part", "l2"), node: o.NodeName, poke: poke, event: event,
		wants: map[netip.Addr]plan.L2Want{}, since: map[netip.Addr]time.Time{}, errs: map[netip.Addr]string{},
		ifaces: l2.Interfaces,
	}
	if o.l2Interfaces != nil {
		m.ifaces = o.l2Interfaces
	}
	m.ann = l2.New(l2.Options{Log: m.log})
	el, err := l2owner.New(cfg, l2owner.Config{
		Namespace: o.Namespace, Node: o.NodeName,
		LeaseDuration: o.L2.LeaseDuration, RenewInterval: o.L2.RenewInterval,
		OnChange: m.setOwned, OnTransition: m.transition, OnFence: m.ann.SetFence, Log: m.log,
	})
	if err != nil {
		m.ann.Close()
		return nil, fmt.Errorf("l2: %w", err)
	}
	m.el = el
	return m, nil
}

// setWants hands the election the cluster's L2 addresses and this node's
// candidacy, and answers on the interfaces the new plan says.
func (m *l2Mode) setWants(p plan.L2Plan) {
	wants := make(map[netip.Addr]plan.L2Want, len(p.Wants))
	ew := make([]l2owner.Want, 0, len(p.Wants))
	for _, w := range p.Wants {
		wants[w.Addr] = w
		keys := make([]string, len(w.Services))
		for i, k := range w.Services {
			keys[i] = k.String()
		}
		ew = append(ew, l2owner.Want{Addr: w.Addr, Policies: w.Policies, Nodes: w.Nodes, Services: keys})
	}
	m.mu.Lock()
	m.wants = wants
	m.applyLocked()
	m.mu.Unlock()
	m.el.SetCandidacy(p.Candidate, p.Policies)
	m.el.Set(ew)
}

// setOwned is the elector's OnChange.
func (m *l2Mode) setOwned(owned []netip.Addr) {
	m.mu.Lock()
	now := time.Now()
	for _, a := range owned {
		if _, ok := m.since[a]; !ok {
			m.since[a] = now
		}
	}
	for a := range m.since {
		if !slices.Contains(owned, a) {
			delete(m.since, a)
		}
	}
	m.owned = slices.Clone(owned)
	m.applyLocked()
	m.mu.Unlock()
	m.poke()
}

// refresh lists the node's interfaces again and answers on those there
// are now (a link that came up, an address added); it reports whether the
// links changed, which changes this node's candidacy (a new sync).
func (m *l2Mode) refresh(need bool) bool {
	if !need {
		return false
	}
	ifs, err := m.ifaces()
	if err != nil {
		m.log.Warn("listing the node's interfaces", "err", err)
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := !m.listed || !slices.EqualFunc(links(ifs), links(m.ifs), linkEqual)
	m.ifs, m.listed = ifs, true
	m.applyLocked()
	return changed
}

// listedOnce says whether the interfaces have been listed yet.
func (m *l2Mode) listedOnce() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.listed
}

// links are the interfaces that can answer, for the planner.
func (m *l2Mode) links() []plan.Link {
	m.mu.Lock()
	defer m.mu.Unlock()
	return links(m.ifs)
}

func links(ifs []l2.Interface) []plan.Link {
	var out []plan.Link
	for _, i := range ifs {
		if i.Up && !i.Loopback && len(i.MAC) == 6 {
			out = append(out, plan.Link{Name: i.Name, Prefixes: i.Prefixes})
		}
	}
	return out
}

func linkEqual(a, b plan.Link) bool { return a.Name == b.Name && slices.Equal(a.Prefixes, b.Prefixes) }

// applyLocked makes the responder answer for the owned addresses on the
// interfaces their policies select, from the interfaces last listed.
func (m *l2Mode) applyLocked() {
	var answers []l2.Answer
	errs := map[netip.Addr]string{}
	for _, a := range m.owned {
		w, ok := m.wants[a]
		if !ok || !w.Here {
			// The election and this node's plan disagree for a moment (a
			// policy just changed): the next sync settles it.
			continue
		}
		names := l2.Select(m.ifs, w.Interfaces, a)
		if len(names) == 0 {
			errs[a] = noInterface(a, w.Interfaces)
		}
		for _, n := range names {
			answers = append(answers, l2.Answer{Addr: a, Interface: n})
		}
	}
	err := m.ann.Set(answers)
	if e := fmt.Sprint(err); err != nil && e != m.setErr {
		m.log.Warn("answering ARP/NDP", "err", err)
	}
	m.setErr = ""
	if err != nil {
		m.setErr = fmt.Sprint(err)
	}
	// Each address's own failure, from the responder's status: an error
	// text naming 10.0.0.12 must not be read as one about 10.0.0.1.
	for _, st := range m.ann.Status() {
		if st.LastError != nil && errs[st.Addr] == "" {
			errs[st.Addr] = truncate(fmt.Sprintf("%s: %v", st.Interface, st.LastError), 1024)
		}
	}
	for a, e := range errs {
		if m.errs[a] != e {
			m.log.Warn("an owned address is not answered for", "addr", a, "why", e)
		}
	}
	m.errs = errs
}

func noInterface(a netip.Addr, patterns []string) string {
	if len(patterns) == 0 {
		return fmt.Sprintf("no interface of this node has an address on the subnet of %s (set interfaces in the L2AnnouncementPolicy to answer elsewhere)", a)
	}
	return fmt.Sprintf("no interface of this node is up and matches %s", strings.Join(patterns, ", "))
}

// transition is the elector's OnTransition: an event on the Services of
// an address this node took.
func (m *l2Mode) transition(t l2owner.Transition) {
	if t.To != m.node {
		return
	}
	m.takeovers.Add(1)
	note := fmt.Sprintf("%s answers ARP/NDP for %s", t.To, t.Addr)
	if t.From != "" {
		note += " (was " + t.From + ")"
	}
	m.log.Info("took an address over", "addr", t.Addr, "from", t.From)
	for _, s := range t.Services {
		ns, name, ok := strings.Cut(s, "/")
		if ok {
			m.event(lbmodel.Key{Namespace: ns, Name: name}, note)
		}
	}
}

// answered sums the responder's status per address: the interfaces
// answered on (sorted) and the frames sent.
func (m *l2Mode) answered() map[netip.Addr]*view.L2Address {
	out := map[netip.Addr]*view.L2Address{}
	for _, st := range m.ann.Status() {
		v := out[st.Addr]
		if v == nil {
			v = &view.L2Address{Address: st.Addr}
			out[st.Addr] = v
		}
		v.Interfaces = append(v.Interfaces, st.Interface)
		v.Answered += st.Answered
		v.Gratuitous += st.Gratuitous
	}
	for _, v := range out {
		slices.Sort(v.Interfaces)
		v.Interfaces = slices.Compact(v.Interfaces)
	}
	return out
}

// answers are the ServiceAnnouncement status.l2 entries, per Service.
func (m *l2Mode) answers() map[lbmodel.Key][]v1alpha1.L2Answer {
	stats := m.answered()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[lbmodel.Key][]v1alpha1.L2Answer{}
	for _, a := range m.owned {
		w, ok := m.wants[a]
		if !ok {
			continue
		}
		since := metav1.NewTime(m.since[a].Truncate(time.Second))
		ans := v1alpha1.L2Answer{Address: a.String(), Since: &since, LastError: m.errs[a]}
		if st := stats[a]; st != nil {
			ans.Interfaces = st.Interfaces
		}
		for _, k := range w.Services {
			out[k] = append(out[k], ans)
		}
	}
	return out
}

// L2 is the view of `bgplb l2`. Why an owned address is not answered
// somewhere (m.errs) already holds the responder's own errors
// (applyLocked).
func (m *l2Mode) L2() []view.L2Address {
	stats := m.answered()
	m.mu.Lock()
	errs := m.errs
	m.mu.Unlock()
	var out []view.L2Address
	for _, s := range m.el.Status() {
		v := view.L2Address{Address: s.Addr, Owner: s.Holder, Here: s.Owned, Since: s.Since, Transitions: s.Transitions,
			Candidates: s.Candidates, Services: s.Services}
		if st := stats[s.Addr]; st != nil {
			v.Interfaces, v.Answered, v.Gratuitous = st.Interfaces, st.Answered, st.Gratuitous
		}
		if s.Owned {
			v.LastError = errs[s.Addr]
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b view.L2Address) int { return a.Address.Compare(b.Address) })
	return out
}

// stop hands every owned address to the next candidate and stops
// answering: a speaker stopping, for good or to restart, must not leave
// its addresses unanswered until its heartbeat expires.
func (m *l2Mode) stop(ctx context.Context) {
	if err := m.el.Stop(ctx); err != nil {
		m.log.Warn("handing the L2 addresses over", "err", err)
	}
	m.mu.Lock()
	m.owned = nil
	m.applyLocked()
	m.mu.Unlock()
	if err := m.ann.Close(); err != nil {
		m.log.Warn("closing the ARP/NDP sockets", "err", err)
	}
}

// serviceEvent records an event on a Service, read from the cache.
func (s *Speaker) serviceEvent(k lbmodel.Key, note string) {
	if s.events == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var svc corev1.Service
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Name}, &svc); err != nil {
		return
	}
	s.events.Eventf(&svc, nil, corev1.EventTypeNormal, EventL2Owner, "Announce", "%s", note)
}
