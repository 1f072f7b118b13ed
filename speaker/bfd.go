package speaker

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/view"
)

// bfdPeer is what a BGPRouter with a bfdPolicy asks of BFD: the session's
// timers, and whether it is multihop (an eBGP multihop peer is not on
// the link).
type bfdPeer struct {
	addr     netip.Addr
	cfg      bfd.Config
	multihop bool
}

// bfdWant is one BFD session that should run now.
type bfdWant struct {
	key bfd.Key
	cfg bfd.Config
}

// bfdWanted decides which BFD sessions run: one per peer that asks for BFD
// and whose BGP session is established, from the local address that
// session runs from. BFD guards a session that is up; before that, BGP's
// own connect retries say all there is to say about the path.
func bfdWanted(peers map[string]bfdPeer, established map[string]netip.Addr) map[string]bfdWant {
	out := map[string]bfdWant{}
	for name, p := range peers {
		local, up := established[name]
		if !up || !local.IsValid() {
			continue
		}
		// The speaker runs in the node's namespace and does not know the
		// link a single-hop session runs over: the kernel's route to the
		// peer picks it, as it does for the BGP session.
		k := bfd.Key{Peer: p.addr.Unmap(), Local: local.Unmap(), Multihop: p.multihop}
		out[name] = bfdWant{key: k, cfg: p.cfg}
	}
	return out
}

// bfdSession is a running BFD session of one peer and its watcher.
type bfdSession struct {
	want bfdWant
	stop context.CancelFunc
}

// bfdSessions keeps the BFD sessions in line with the BGPRouters' policies
// and the BGP sessions' states, and resets a BGP session whose BFD session
// went down. Its methods are safe for concurrent use; the watchers end
// with ctx.
type bfdSessions struct {
	ctx   context.Context
	log   *slog.Logger
	m     *bfd.Manager
	reset func(peer string)
	wg    sync.WaitGroup
	// teardowns counts BGP sessions reset on BFD's word, for metrics.
	teardowns atomic.Uint64

	mu          sync.Mutex // guards below, and orders Add/Remove with them
	peers       map[string]bfdPeer
	established map[string]netip.Addr
	running     map[string]*bfdSession
	// lastDown is, by peer, the last time a BFD session of an earlier BGP
	// session left Up (one that took its BGP session down, or one stopped
	// after it went down): the report keeps saying so after that BFD
	// session is gone, and never goes back to an older one.
	lastDown map[string]bfdTeardown
}

// bfdTeardown is when and why a BFD session last left Up, with the
// peer's state then.
type bfdTeardown struct {
	diag   bfd.Diag
	remote bfd.State
	at     time.Time
}

func newBFDSessions(ctx context.Context, log *slog.Logger, m *bfd.Manager, reset func(string)) *bfdSessions {
	return &bfdSessions{
		ctx: ctx, log: log, m: m, reset: reset,
		peers: map[string]bfdPeer{}, established: map[string]netip.Addr{}, running: map[string]*bfdSession{},
		lastDown: map[string]bfdTeardown{},
	}
}

// setPeers replaces the peers that ask for BFD (on every speaker sync).
func (b *bfdSessions) setPeers(peers map[string]bfdPeer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.peers = peers
	maps.DeleteFunc(b.lastDown, func(name string, _ bfdTeardown) bool { _, ok := peers[name]; return !ok })
	b.apply()
}

// session records a BGP session going up (from local) or down; it is
// announce.Options.OnSession. Add and Remove do not block on the network.
func (b *bfdSessions) session(name string, up bool, local netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if up {
		b.established[name] = local
	} else {
		delete(b.established, name)
	}
	b.apply()
}

// apply starts, retunes and stops sessions to match bfdWanted; b.mu is held.
func (b *bfdSessions) apply() {
	want := bfdWanted(b.peers, b.established)
	for name, cur := range b.running {
		w, ok := want[name]
		switch {
		case !ok || w.key != cur.want.key:
			b.stopLocked(name, cur)
		case !reflect.DeepEqual(w.cfg, cur.want.cfg):
			if err := b.m.Reconfigure(cur.want.key, w.cfg); err != nil {
				b.log.Warn("bfd reconfigure", "peer", name, "err", err)
				continue
			}
			cur.want.cfg = w.cfg
		}
	}
	for name, w := range want {
		if _, ok := b.running[name]; !ok {
			b.start(name, w)
		}
	}
}

// stopLocked ends name's session; Remove tells the peer AdminDown, which
// is not a path failure for it. The session's last down is kept first.
// b.mu is held.
func (b *bfdSessions) stopLocked(name string, cur *bfdSession) {
	delete(b.running, name)
	cur.stop()
	if st, ok := b.m.Status(cur.want.key); ok {
		b.noteDown(name, bfdTeardown{diag: st.LastDownDiag, remote: st.LastDownRemoteState, at: st.LastDown})
	}
	if err := b.m.Remove(cur.want.key); err != nil {
		b.log.Debug("bfd remove", "peer", name, "err", err)
	}
}

// start adds the session and a watcher that resets the BGP session when
// BFD goes down. b.mu is held.
func (b *bfdSessions) start(name string, w bfdWant) {
	if err := b.m.Add(bfd.SessionConfig{Key: w.key, Config: w.cfg}); err != nil {
		b.log.Error("bfd: cannot start the session: the BGP session runs without it", "peer", name, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(b.ctx)
	s := &bfdSession{want: w, stop: cancel}
	watch, err := b.m.WatchPathDown(ctx, w.key, func(ev bfd.Event) { b.bfdDown(name, s, ev) })
	if err != nil {
		cancel()
		_ = b.m.Remove(w.key)
		b.log.Error("bfd subscribe", "peer", name, "err", err)
		return
	}
	b.running[name] = s
	b.log.Info("bfd session started", "peer", name, "session", w.key.String(),
		"minTx", w.cfg.DesiredMinTx, "minRx", w.cfg.RequiredMinRx, "multiplier", w.cfg.DetectMult)
	b.wg.Go(watch)
}

// bfdDown resets name's BGP session, if s is still its BFD session: one of
// an earlier BGP session (stopped, its event late) must not reset a new one.
func (b *bfdSessions) bfdDown(name string, s *bfdSession, ev bfd.Event) {
	b.mu.Lock()
	mine := b.running[name] == s
	if mine {
		b.stopLocked(name, s)
		// The BGP session is as good as down: no new BFD session until it
		// is established again.
		delete(b.established, name)
		b.noteDown(name, bfdTeardown{diag: ev.Diag, remote: ev.RemoteState, at: ev.At})
	}
	b.mu.Unlock()
	if !mine || b.ctx.Err() != nil {
		return
	}
	b.log.Warn("BFD down: resetting the BGP session", "peer", name, "diag", ev.Diag.String())
	b.teardowns.Add(1)
	b.reset(name)
}

// noteDown keeps td as name's last down if it is the later. b.mu is held.
func (b *bfdSessions) noteDown(name string, td bfdTeardown) {
	if td.at.After(b.lastDown[name].at) {
		b.lastDown[name] = td
	}
}

// status is name's BFD session's state, if it runs one.
func (b *bfdSessions) status(name string) (bfd.Status, bool) {
	b.mu.Lock()
	cur := b.running[name]
	b.mu.Unlock()
	if cur == nil {
		return bfd.Status{}, false
	}
	return b.m.Status(cur.want.key)
}

// reports is what each peer's BGPSessionStatus says of its BFD, by peer
// name: the running sessions, and the peers whose earlier sessions went
// down.
func (b *bfdSessions) reports() map[string]*v1alpha1.BGPSessionBFD {
	b.mu.Lock()
	keys := b.runningKeysLocked()
	lastDown := maps.Clone(b.lastDown)
	b.mu.Unlock()
	out := make(map[string]*v1alpha1.BGPSessionBFD, len(keys)+len(lastDown))
	for name, k := range keys {
		if st, ok := b.m.Status(k); ok {
			out[name] = bfdReport(&st, lastDown[name])
		}
	}
	for name, td := range lastDown {
		if _, ok := out[name]; !ok {
			out[name] = bfdReport(nil, td)
		}
	}
	return out
}

// bfdReport is a BGPSessionStatus's bfd: from the running session's
// status, or Down when none runs; the last time the session left Up is
// the later of the running session's and td (an earlier BFD session's).
func bfdReport(st *bfd.Status, td bfdTeardown) *v1alpha1.BGPSessionBFD {
	r := &v1alpha1.BGPSessionBFD{State: bfd.Down.String()}
	if st != nil {
		r.State, r.RemoteState = st.State.String(), st.RemoteState.String()
		if st.TxInterval > 0 {
			r.TransmitInterval = &metav1.Duration{Duration: st.TxInterval}
		}
		if st.RemoteMult > 0 && st.DetectTime > 0 {
			r.ReceiveInterval = &metav1.Duration{Duration: st.DetectTime / time.Duration(st.RemoteMult)}
			r.DetectMultiplier = int32(st.RemoteMult)
		}
		if st.LastDown.After(td.at) {
			td = bfdTeardown{diag: st.LastDownDiag, remote: st.LastDownRemoteState, at: st.LastDown}
		}
	}
	if !td.at.IsZero() {
		// Whole seconds, as the API server keeps them: a report read back
		// after a restart compares equal.
		t := metav1.NewTime(td.at.Truncate(time.Second))
		r.LastDownReason, r.LastDownRemoteState, r.LastDownTime = td.diag.String(), td.remote.String(), &t
	}
	return r
}

// runningKeysLocked is the key of every running session, by peer name;
// b.mu is held. Status is asked after unlocking.
func (b *bfdSessions) runningKeysLocked() map[string]bfd.Key {
	keys := make(map[string]bfd.Key, len(b.running))
	for name, s := range b.running {
		keys[name] = s.want.key
	}
	return keys
}

// states is the state of every BFD session that runs, by peer name.
func (b *bfdSessions) states() map[string]bfd.State {
	b.mu.Lock()
	keys := b.runningKeysLocked()
	b.mu.Unlock()
	out := make(map[string]bfd.State, len(keys))
	for name, k := range keys {
		if st, ok := b.m.Status(k); ok {
			out[name] = st.State
		}
	}
	return out
}

// bfdShutdownTimeout bounds the AdminDown packets sent on the way out:
// bfd.MaxFarewell bounds them already; the rest is slack.
const bfdShutdownTimeout = bfd.MaxFarewell + 500*time.Millisecond

// shutdown tells every peer AdminDown and stops the sessions (bfd.Manager's
// Shutdown): the speaker's normal stop.
func (b *bfdSessions) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), bfdShutdownTimeout)
	defer cancel()
	if err := b.m.Shutdown(ctx); err != nil {
		b.log.Warn("bfd shutdown", "err", err)
	}
}

// wait returns once every watcher has ended (after ctx ended).
func (b *bfdSessions) wait() { b.wg.Wait() }

// bfdPeers is what each BGPRouter with a bfdPolicy asks of BFD, given the
// BFDPolicies by name, and what cannot be honoured: a missing policy (the
// session runs without BFD) or echo mode (BFD runs without echo).
func bfdPeers(peers []lbmodel.Peer, policies map[string]*v1alpha1.BFDPolicySpec) (map[string]bfdPeer, []string) {
	out := map[string]bfdPeer{}
	var problems []string
	for i := range peers {
		p := &peers[i]
		name := p.Spec.BFDPolicy
		if name == "" {
			continue
		}
		spec, ok := policies[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("BGPRouter %s: %s", p.Name, lbmodel.BFDPolicyMissing(name)))
			continue
		}
		cfg, unsup := lbmodel.BFDConfig(spec)
		for _, u := range unsup {
			problems = append(problems, fmt.Sprintf("BFDPolicy %s (BGPRouter %s): %s", name, p.Name, u))
		}
		multihop := p.Spec.EBGPMultiHop != nil && *p.Spec.EBGPMultiHop > 1
		out[p.Name] = bfdPeer{addr: p.Address, cfg: cfg, multihop: multihop}
	}
	return out, problems
}

// bfdView is the speaker's API: the announcer's, with each session's BFD
// session, as `bgplb neighbor` shows it for a router.
type bfdView struct {
	view.Source
	bfd *bfdSessions
	l2  *l2Mode
}

// L2 implements view.L2Source.
func (v bfdView) L2(context.Context) []view.L2Address { return v.l2.L2() }

// Neighbors implements view.Source.
func (v bfdView) Neighbors(ctx context.Context) []view.Neighbor {
	ns := v.Source.Neighbors(ctx)
	for i := range ns {
		// The announcer names each neighbour by its BGPRouter.
		if st, ok := v.bfd.status(ns[i].Description); ok {
			ns[i].BFD = view.BFDOf(st)
		}
	}
	return ns
}
