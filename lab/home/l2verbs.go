package home

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/dnsserver"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/speaker/l2owner"
)

// The verbs in L2 mode do what they do in BGP mode (pull a node's cables,
// move the Pi-hole, restart bgplb), and watch what the LAN's client sees:
// which node answers ARP for the address, its neighbour table, the
// gratuitous ARPs on its link, and its queries.

// OwnerNode is what `bgplb lab fail owner` names in L2 mode: the node that
// owns the Pi-hole's address now.
const OwnerNode = "owner"

// errL2 refuses a verb that acts on the routers' side in L2 mode.
func errL2(verb string) error {
	return fmt.Errorf("%s acts on BGP, and this lab runs in L2 mode (no router daemon): try move, fail, heal, lease or restart controller|speaker", verb)
}

// probe is the client asking the Pi-hole every 20 ms (each query a single
// try, from a new port) while a verb runs; it notes the first answer from
// a given node's pod to a query sent after a given time.
type probe struct {
	cancel context.CancelFunc
	done   chan []dnsserver.Result

	mu       sync.Mutex // guards the fields below
	after    time.Time
	node     string
	first    time.Time
	arrived  chan struct{}     // closed at the first answer wanted
	answers  []time.Time       // when the answers wanted were sent
	loss     time.Time         // when the last query lost since after was sent
	pending  map[int]time.Time // the queries not answered nor lost yet: when sent
	steady   chan struct{}     // closed at steadyAnswers answers wanted in a row
	isSteady bool
}

// steadyAnswers in a row show a failover done: the client's next queries
// succeed, not just one of them.
const steadyAnswers = 10

// startProbe starts the client asking vip; stop ends it.
func (u *upper) startProbe(ctx context.Context, vip netip.Addr) *probe {
	ctx, cancel := context.WithCancel(ctx)
	p := &probe{cancel: cancel, done: make(chan []dnsserver.Result, 1), arrived: make(chan struct{}),
		steady: make(chan struct{}), pending: map[int]time.Time{}}
	go func() {
		rs, _ := dnsserver.Stream(ctx, dnsserver.StreamOptions{In: u.s.Host(seed.Client).Do,
			Server: netip.AddrPortFrom(vip, seed.DNSPort), Name: "pihole.lab.", OnSend: p.sent, OnResult: p.result})
		p.done <- rs
	}()
	return p
}

// want arms the probe: the first answer from node's pod to a query sent
// at or after after closes arrived.
func (p *probe) want(after time.Time, node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.after, p.node = after, node
}

func (p *probe) sent(seq int, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending[seq] = at
}

func (p *probe) result(r dnsserver.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pending, r.Seq)
	if p.node == "" || r.Sent.Before(p.after) || p.isSteady {
		return
	}
	// Results come back out of order (a lost query's at its timeout):
	// in a row means sent after the last query lost.
	if r.Lost() || r.Node != p.node {
		if r.Sent.After(p.loss) {
			p.loss = r.Sent
		}
	} else {
		if p.first.IsZero() {
			p.first = r.Arrived
			close(p.arrived)
		}
		p.answers = append(p.answers, r.Sent)
	}
	var pending []time.Time
	for _, t := range p.pending {
		if !t.Before(p.after) {
			pending = append(pending, t)
		}
	}
	if steadyRun(p.answers, p.loss, pending, steadyAnswers) {
		p.isSteady = true
		close(p.steady)
	}
}

// steadyRun says whether the answers (when their queries were sent) make
// a run of n in a row: n sent after the last loss, and no query sent
// between that loss and the last of them still unanswered (pending: when
// sent), since a lost query shows only at its timeout.
func steadyRun(answers []time.Time, loss time.Time, pending []time.Time, n int) bool {
	count, last := 0, time.Time{}
	for _, t := range answers {
		if t.After(loss) {
			count++
			if t.After(last) {
				last = t
			}
		}
	}
	if count < n {
		return false
	}
	for _, t := range pending {
		if t.After(loss) && t.Before(last) {
			return false
		}
	}
	return true
}

// wait waits for the answer want asked for, and says when it came.
func (p *probe) wait(ctx context.Context) (time.Time, error) {
	select {
	case <-p.arrived:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.first, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// waitSteady waits for steadyAnswers answers in a row from want's node.
func (p *probe) waitSteady(ctx context.Context) error {
	select {
	case <-p.steady:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop ends the client's queries and sums them up.
func (p *probe) stop() dnsserver.Summary {
	p.cancel()
	return dnsserver.Summarize(<-p.done)
}

// l2Fail cuts node off (both links, as in BGP mode). When it owns the
// Pi-hole's address, it times the failover as the client sees it: from
// the cut to the first query the other node's Pi-hole answers, the
// client's neighbour entry moving to the other node's MAC, and the
// gratuitous ARPs that moved it.
func (u *upper) l2Fail(ctx context.Context, node string) error {
	s, out := u.s, u.o.Out
	from, err := u.owner(ctx, L2VIP)
	if err != nil {
		return err
	}
	if from != node {
		if err := u.do([]step{{fmt.Sprintf("cutting %s off the LAN and the API link (%s owns %s: nothing moves)", node, from, L2VIP),
			func() error { return u.cutOff(ctx, node) }}}); err != nil {
			return err
		}
		fmt.Fprintf(out, "\n`bgplb lab heal %s` puts it back; `bgplb lab fail %s` cuts the owner.\n\n", node, OwnerNode)
		return show(ctx, out, s, u.st)
	}
	to := u.otherNode(node)
	mac, err := u.nodeMAC(to)
	if err != nil {
		return err
	}
	watch, err := s.Host(seed.Client).WatchAnnouncements(lab.DefaultIfname)
	if err != nil {
		return err
	}
	defer watch.Close()
	p := u.startProbe(ctx, L2VIP)
	var cut, answered time.Time
	var entry Neighbor
	steps := []step{
		{fmt.Sprintf("cutting %s, the owner of %s, off the LAN and the API link", node, L2VIP), func() error {
			// Armed once the cut is stamped: the other node answers
			// nothing for a lease duration after it, far longer than
			// setting the links down takes.
			var err error
			cut, err = u.cutOffAt(ctx, node)
			p.want(cut, to)
			return err
		}},
		{fmt.Sprintf("waiting for the client's first query answered by the Pi-hole on %s", to), func() error {
			var err error
			answered, err = p.wait(ctx)
			return err
		}},
		{fmt.Sprintf("waiting for the client's next %d queries in a row answered there", steadyAnswers), func() error {
			return p.waitSteady(ctx)
		}},
		{fmt.Sprintf("waiting for the client's neighbour entry for %s to name %s's MAC %s", L2VIP, to, mac), func() error {
			var err error
			entry, err = u.waitNeighbor(ctx, seed.Client, L2VIP, mac)
			return err
		}},
		{fmt.Sprintf("waiting for %s's address Lease to name %s, taken after the cut", L2VIP, to), func() error {
			return u.waitTakenAfter(ctx, L2VIP, node, cut)
		}},
	}
	err = u.do(steps)
	sum := p.stop()
	if err != nil {
		return err
	}
	seen, werr := watch.Seen()
	garps := lab.CountAnnouncements(seen, L2VIP, mac, cut)
	took := answered.Sub(cut)
	u.figure("l2-answered", took)
	u.count("l2-lost", sum.Lost)
	u.count("l2-announcements", garps)
	fmt.Fprintf(out, "    the client: %v\n    its neighbour entry: %s\n", sum, entry)
	fmt.Fprintf(out, "    gratuitous ARPs from %s (%s) on the client's link since the cut: %d", to, mac, garps)
	if werr != nil {
		fmt.Fprintf(out, " (the capture stopped: %v)", werr)
	}
	fmt.Fprintf(out, "\n\nthe client's queries were answered by %s %v after %s went away; `bgplb lab heal %s` puts it back.\n\n",
		to, took.Round(time.Millisecond), node, node)
	return show(ctx, out, s, u.st)
}

func (u *upper) figure(name string, d time.Duration) {
	if u.o.Figure != nil {
		u.o.Figure(name, d)
	}
}

func (u *upper) count(name string, n int) {
	if u.o.Count != nil {
		u.o.Count(name, n)
	}
}

// cutOff takes node off the LAN and the API link, as a dead machine.
func (u *upper) cutOff(ctx context.Context, node string) error {
	_, err := u.cutOffAt(ctx, node)
	return err
}

// cutOffAt is cutOff, and says when the cut began: stamped after the
// preparations, right before the LAN link goes down, so that a failover
// timed from it is not flattered by them.
func (u *upper) cutOffAt(ctx context.Context, node string) (time.Time, error) {
	h := u.s.Host(node)
	// Keep the IPv6 address across the outage, as a real NIC whose cable
	// is pulled keeps its configuration.
	if err := h.SetSysctls(ctx, map[string]string{"net/ipv6/conf/" + lab.DefaultIfname + "/keep_addr_on_down": "1"}); err != nil {
		return time.Time{}, err
	}
	cut := time.Now()
	if err := h.SetDown(ctx, lab.DefaultIfname); err != nil {
		return cut, err
	}
	return cut, h.SetDown(ctx, seed.APIIfname)
}

// reconnect undoes cutOff: both links, the default and pod routes the
// links took with them.
func (u *upper) reconnect(ctx context.Context, node string) error {
	h := u.s.Host(node)
	for _, ifname := range []string{lab.DefaultIfname, seed.APIIfname} {
		if err := h.SetUp(ctx, ifname); err != nil {
			return err
		}
	}
	if err := h.IP(ctx, "route", "replace", "default", "via", u.s.RouterAddr(1).String()); err != nil {
		return err
	}
	if err := h.IP(ctx, "-6", "route", "replace", "default", "via", u.s.RouterAddr6(1).String()); err != nil {
		return err
	}
	return u.s.RoutePods(ctx)
}

// l2Heal reconnects node and waits until the lab is as Up left it: the
// node Ready, a Pi-hole pod on each node, an owner answering the client.
func (u *upper) l2Heal(ctx context.Context, node string) error {
	var back time.Time
	if err := u.do([]step{
		{fmt.Sprintf("putting %s back on the LAN and the API link", node), func() error {
			back = time.Now()
			return u.reconnect(ctx, node)
		}},
		{fmt.Sprintf("waiting for the Node %s to be Ready", node), func() error { return u.waitNode(ctx, node, true) }},
		{"waiting for a Ready Pi-hole pod on each node", func() error { return u.spreadPihole(ctx) }},
		u.l2BackStep(ctx, node, back),
		u.l2SettledStep(ctx),
	}); err != nil {
		return err
	}
	fmt.Fprintln(u.o.Out)
	return show(ctx, u.o.Out, u.s, u.st)
}

// l2BackStep waits until the speakers can see node as a candidate again:
// its heartbeat Lease renewed after since, and its Pi-hole pod a ready
// endpoint of the L2 Service. Only then may the election hand the address
// back to it, and only a wait for a steady owner after that sees the
// hand-back through (l2SettledStep).
func (u *upper) l2BackStep(ctx context.Context, node string, since time.Time) step {
	return step{fmt.Sprintf("waiting for %s's heartbeat Lease and its Pi-hole pod in the EndpointSlice of %s", node, l2Service), func() error {
		return u.whileAlive(ctx, func(ctx context.Context) error {
			if err := u.waitHeartbeat(ctx, node, since); err != nil {
				return err
			}
			return u.waitEndpoint(ctx, l2Service, node)
		})
	}}
}

// l2SettledStep waits until a node owns the Pi-hole's address, has held
// it for two lease durations, and its pod answers the client there. The
// wait for a steady owner matters to what comes next: while speakers
// (re)start, an address first goes to any live node, then to the node the
// election ranks first, as soon as that one is live; a node back from a
// cut or a cordon takes back the addresses it ranks first for.
func (u *upper) l2SettledStep(ctx context.Context) step {
	hold := 2 * u.st.leaseDuration()
	return step{fmt.Sprintf("waiting for an owner of %s (held for %v) and the client's answer from its Pi-hole", L2VIP, hold), func() error {
		return u.whileAlive(ctx, func(ctx context.Context) error {
			if err := u.waitHeld(ctx, L2VIP, hold); err != nil {
				return err
			}
			return u.waitOwnerAnswer(ctx)
		})
	}}
}

// leaseDuration is the election's lease duration the speakers run.
func (st *State) leaseDuration() time.Duration {
	if st.L2Lease.Duration > 0 {
		return st.L2Lease.Duration
	}
	return l2owner.DefaultLeaseDuration
}

// waitHeld waits until addr has had the same owner, unchanged, for at
// least hold, counted from the wait's start at the earliest: an owner
// that has held the address long is no steady owner when the election
// has just been given a reason to hand it on (a node back, a node
// uncordoned), and the hand-back follows only once the speakers see it.
func (u *upper) waitHeld(ctx context.Context, addr netip.Addr, hold time.Duration) error {
	var last owner
	seen := time.Now() // when last was first seen, the wait's start at the earliest
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		owned, err := u.k.owners(ctx)
		if err != nil {
			return false, nil
		}
		if o := owned[addr]; o.Node != last.Node || !o.Since.Equal(last.Since) {
			last, seen = o, time.Now()
		}
		return heldFor(last, seen, time.Now(), hold), nil
	})
	if err != nil {
		return fmt.Errorf("no owner of %s held it for %v (last seen %q since %v): %w", addr, hold, last.Node, last.Since, err)
	}
	return nil
}

// heldFor says whether an owner, unchanged since seen (and, as its Lease
// says, holding since o.Since), has held the address for hold at now.
func heldFor(o owner, seen, now time.Time, hold time.Duration) bool {
	return o.Node != "" && now.Sub(later(o.Since, seen)) >= hold
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// waitHeartbeat waits until node's heartbeat Lease (the election's sign
// of a live node) was renewed after since.
func (u *upper) waitHeartbeat(ctx context.Context, node string, since time.Time) error {
	var last string
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		var l coordinationv1.Lease
		if err := u.k.c.Get(ctx, client.ObjectKey{Namespace: speakerNamespace, Name: l2owner.NodeLeaseName(node)}, &l); err != nil {
			last = err.Error()
			return false, nil
		}
		if l.Spec.RenewTime == nil {
			last = "no renew time"
			return false, nil
		}
		last = "renewed at " + l.Spec.RenewTime.Format(time.StampMicro)
		return l.Spec.RenewTime.After(since), nil
	})
	if err != nil {
		return fmt.Errorf("%s's heartbeat Lease %s not renewed since %v (last: %s): %w",
			node, l2owner.NodeLeaseName(node), since.Format(time.StampMicro), last, err)
	}
	return nil
}

// waitEndpoint waits until a ready endpoint on node is in an
// EndpointSlice of the Service svc (ETP Local: what lets node own its
// address).
func (u *upper) waitEndpoint(ctx context.Context, svc, node string) error {
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		var es discoveryv1.EndpointSliceList
		if err := u.k.c.List(ctx, &es, client.InNamespace("default"), client.MatchingLabels{discoveryv1.LabelServiceName: svc}); err != nil {
			return false, nil
		}
		return readyEndpointOn(es.Items, node), nil
	})
	if err != nil {
		return fmt.Errorf("no ready endpoint of %s on %s: %w", svc, node, err)
	}
	return nil
}

// readyEndpointOn says whether the slices name a ready endpoint on node.
func readyEndpointOn(ess []discoveryv1.EndpointSlice, node string) bool {
	for _, s := range ess {
		for _, e := range s.Endpoints {
			if e.NodeName != nil && *e.NodeName == node && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				return true
			}
		}
	}
	return false
}

// waitTakenAfter waits until a node other than from owns addr, and checks
// that it took the address after cut: an owner that took it earlier took
// it in a hand-back still under way when the cut came, and what was timed
// is not a failover.
func (u *upper) waitTakenAfter(ctx context.Context, addr netip.Addr, from string, cut time.Time) error {
	to, err := u.waitOwner(ctx, addr, from)
	if err != nil {
		return err
	}
	owned, err := u.k.owners(ctx)
	if err != nil {
		return fmt.Errorf("reading %s's address Lease: %w", addr, err)
	}
	o := owned[addr]
	if o.Node != to || !o.Since.After(cut) {
		return fmt.Errorf("measured a hand-back, not a failover: %s's Lease names %q since %v, the cut of %s was at %v",
			addr, o.Node, o.Since.Format(time.StampMicro), from, cut.Format(time.StampMicro))
	}
	return nil
}

// l2Move moves the Pi-hole off the owner, as an operator emptying a node
// does: the owner is cordoned (its speaker drains, and a draining node
// owns nothing) and its Pi-hole pod deleted (the new one goes to the
// other node). The address follows to the other node; then the node is
// uncordoned and the Pi-hole spread over both nodes again.
func (u *upper) l2Move(ctx context.Context) error {
	from, err := u.owner(ctx, L2VIP)
	if err != nil {
		return err
	}
	to := u.otherNode(from)
	mac, err := u.nodeMAC(to)
	if err != nil {
		return err
	}
	// Uncordoned whatever happens: a node left cordoned owns nothing.
	defer func() { _ = u.cordon(context.WithoutCancel(ctx), from, false) }()
	p := u.startProbe(ctx, L2VIP)
	var start time.Time
	var moved time.Duration
	err = u.do([]step{
		{fmt.Sprintf("cordoning %s and deleting its Pi-hole pod (the new one goes to %s)", from, to), func() error {
			start = time.Now()
			if err := u.cordon(ctx, from, true); err != nil {
				return err
			}
			return u.k.c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace("default"), piholeSelector,
				client.MatchingFields{"spec.nodeName": from})
		}},
		{fmt.Sprintf("waiting for %s to own %s", to, L2VIP), func() error {
			_, err := u.waitOwner(ctx, L2VIP, from)
			moved = time.Since(start)
			return err
		}},
		{fmt.Sprintf("waiting for the client's neighbour entry for %s to name %s's MAC %s", L2VIP, to, mac), func() error {
			_, err := u.waitNeighbor(ctx, seed.Client, L2VIP, mac)
			return err
		}},
		{"uncordoning " + from + " and spreading the Pi-hole over both nodes again", func() error {
			if err := u.cordon(ctx, from, false); err != nil {
				return err
			}
			return u.spreadPihole(ctx)
		}},
		u.l2BackStep(ctx, from, start),
		u.l2SettledStep(ctx),
	})
	sum := p.stop()
	if err != nil {
		return err
	}
	u.figure("l2-moved", moved)
	u.count("l2-lost", sum.Lost)
	fmt.Fprintf(u.o.Out, "\n%s moved from %s to %s %v after the cordon; the client asking throughout: %v\n",
		L2VIP, from, to, moved.Round(time.Millisecond), sum)
	if now, err := u.owner(ctx, L2VIP); err == nil && now != to {
		// The election ranks the nodes per address: uncordoned, the
		// node it prefers takes the address back.
		fmt.Fprintf(u.o.Out, "uncordoned, %s owns it again: the election prefers it for this address.\n", now)
	}
	fmt.Fprintln(u.o.Out)
	return show(ctx, u.o.Out, u.s, u.st)
}

// L2Lease is how the speakers elect the L2 owners: a node is live while
// it renews its Lease every Renew, and is taken for gone Duration after
// its last renewal.
type L2Lease struct {
	Duration time.Duration `json:"duration"`
	Renew    time.Duration `json:"renew"`
}

func (l L2Lease) String() string {
	if l == (L2Lease{}) {
		return "the speakers' defaults"
	}
	return fmt.Sprintf("lease %s, renewed every %s", l.Duration, l.Renew)
}

// check refuses timings the speakers refuse: a renewal must fit twice in
// a lease, so that one late renewal does not lose it.
func (l L2Lease) check() error {
	if l.Duration <= 0 || l.Renew <= 0 || l.Renew*2 >= l.Duration {
		return fmt.Errorf("lease %v renewed every %v: want both positive, the renewal under half the lease (600ms 200ms)", l.Duration, l.Renew)
	}
	return nil
}

// The speaker's flags for the L2 election's timings.
const (
	flagLeaseDuration = "--l2-lease-duration"
	flagRenewInterval = "--l2-renew-interval"
)

// withLease returns a speaker's arguments with l's timings, replacing
// any the arguments set already (as --flag=value or --flag value).
func withLease(args []string, l L2Lease) []string {
	out := make([]string, 0, len(args)+2)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == flagLeaseDuration || a == flagRenewInterval {
			i++ // its value is the next argument
			continue
		}
		if strings.HasPrefix(a, flagLeaseDuration+"=") || strings.HasPrefix(a, flagRenewInterval+"=") {
			continue
		}
		out = append(out, a)
	}
	return append(out, flagLeaseDuration+"="+l.Duration.String(), flagRenewInterval+"="+l.Renew.String())
}

// TuneLease sets the L2 election's timings on the speaker DaemonSet, as an
// operator would (`kubectl edit`), and waits for the rolling update and an
// owner answering the client again.
func TuneLease(ctx context.Context, o Options, l L2Lease) error {
	if err := l.check(); err != nil {
		return err
	}
	u, ctx, done, err := play(ctx, o, 3*time.Minute)
	if err != nil {
		return err
	}
	defer done()
	if !u.st.l2() {
		return errors.New("lease tunes L2 mode's election: `bgplb lab up --mode l2` first")
	}
	if err := u.do([]step{
		{fmt.Sprintf("setting %s=%s %s=%s on DaemonSet %s", flagLeaseDuration, l.Duration, flagRenewInterval, l.Renew, speakerDaemonSet), func() error {
			return u.setLease(ctx, l)
		}},
		{"waiting for the speakers' rolling update (one node at a time)", func() error {
			return u.waitRolledOut(ctx, &appsv1.DaemonSet{}, speakerDaemonSet)
		}},
		u.l2SettledStep(ctx),
	}); err != nil {
		return err
	}
	u.st.L2Lease = l
	if err := u.st.save(); err != nil {
		return err
	}
	fmt.Fprintf(u.o.Out, "\nthe speakers run the election with %s: a dead owner's addresses move within about %s; try `bgplb lab fail %s`.\n",
		l, l.Duration, OwnerNode)
	return nil
}

// setLease rewrites the speaker container's arguments.
func (u *upper) setLease(ctx context.Context, l L2Lease) error {
	var ds appsv1.DaemonSet
	if err := u.k.c.Get(ctx, client.ObjectKey{Namespace: speakerNamespace, Name: speakerDaemonSet}, &ds); err != nil {
		return err
	}
	cs := ds.Spec.Template.Spec.Containers
	for i := range cs {
		if cs[i].Name == "speaker" {
			cs[i].Args = withLease(cs[i].Args, l)
			return u.k.c.Update(ctx, &ds)
		}
	}
	return fmt.Errorf("DaemonSet %s has no container named speaker", speakerDaemonSet)
}
