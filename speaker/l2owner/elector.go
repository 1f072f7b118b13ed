package l2owner

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Elector takes part in the election of this node's share of the L2
// addresses. Run drives it; Set and SetCandidacy feed it from any
// goroutine; OnChange and OnTransition are called from Run's goroutine.
type Elector struct {
	c       Config
	client  kubernetes.Interface
	beatAPI kubernetes.Interface // the heartbeat's

	kickc  chan struct{} // wakes the loop; capacity 1
	beatc  chan struct{} // wakes the heartbeat; capacity 1
	stopc  chan chan error
	doneMu sync.Mutex
	done   chan struct{} // closed when Run has returned

	mu        sync.Mutex // guards what follows
	want      map[netip.Addr]Want
	wantSet   bool // Set was called: until then no lease is an orphan
	candSet   bool // SetCandidacy was called
	ready     bool
	policies  []string
	stopping  bool
	renewedAt time.Time // start of the last successful renewal; zero: none yet
	candGen   uint64    // counts losses of candidacy: a renewal begun before one does not count
	// appliedGen is the candGen whose answers the loop has announced: the
	// heartbeat is deleted only after, or a peer could take an address
	// this node still answers for.
	appliedGen uint64
	stepAt     time.Time // when the loop last finished a step: a stuck loop must not heartbeat
	freshAt    time.Time // start of the last LIST of the address leases observed
	st         store
	status     []AddressStatus

	needList atomic.Bool // the loop wants a LIST of the address leases; the writer retries one that failed
	writing  atomic.Bool // a batch is with the writer

	// Owned by Run's goroutine.
	owned     map[netip.Addr]bool
	lastWrite map[netip.Addr]time.Time
	reaped    map[string]string        // stale heartbeats tried, at their version
	reapAfter time.Duration            // DefaultReapAfter; tests shorten it before Run
	outSince  map[netip.Addr]time.Time // holder live but no candidate, in this view, since
	wasLive   bool                     // live in its own eyes at the last step
	liveSince time.Time                // the step that last found it live after not
	writers   *sync.WaitGroup          // the batches under way; Run waits for them
}

// New returns an Elector for the cluster cfg reaches.
func New(cfg *rest.Config, c Config) (*Elector, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("l2owner: %w", err)
	}
	// The heartbeat has a client, and so a client-side rate limiter, of
	// its own: a burst of handovers must not delay a renewal past the fence.
	beatClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("l2owner: %w", err)
	}
	return &Elector{
		c:         c,
		client:    client,
		beatAPI:   beatClient,
		kickc:     make(chan struct{}, 1),
		beatc:     make(chan struct{}, 1),
		stopc:     make(chan chan error),
		done:      make(chan struct{}),
		want:      map[netip.Addr]Want{},
		st:        newStore(),
		owned:     map[netip.Addr]bool{},
		lastWrite: map[netip.Addr]time.Time{},
		reapAfter: DefaultReapAfter,
		outSince:  map[netip.Addr]time.Time{},
	}, nil
}

// Set replaces the cluster's L2 addresses. The Elector keeps want's maps
// and slices: the caller must not change them afterwards.
func (e *Elector) Set(want []Want) {
	m := make(map[netip.Addr]Want, len(want))
	for _, w := range want {
		w.Addr = w.Addr.Unmap()
		m[w.Addr] = w
	}
	e.mu.Lock()
	e.want, e.wantSet = m, true
	e.mu.Unlock()
	e.kick()
}

// SetCandidacy says whether this node may own addresses (Ready and not
// excluded) and which L2 policies select it. The heartbeat exists only
// while ready and selected by some policy.
func (e *Elector) SetCandidacy(ready bool, policies []string) {
	e.mu.Lock()
	e.ready, e.policies, e.candSet = ready, slices.Clone(policies), true
	if !e.candidate() {
		e.candGen++
		// Observers may already see no heartbeat: this node must not count
		// itself live on an earlier renewal when it becomes a candidate again.
		e.renewedAt = time.Time{}
	}
	e.mu.Unlock()
	e.kick()
	e.wakeBeat()
}

func (e *Elector) wakeBeat() {
	select {
	case e.beatc <- struct{}{}:
	default:
	}
}

// Status is this node's view of every wanted address, in address order.
func (e *Elector) Status() []AddressStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.status)
}

// Stop stops answering, deletes the heartbeat, hands every address this
// node holds to the next candidate, and makes Run return. The speaker calls
// it on SIGTERM; ending Run's ctx instead leaves the heartbeat to expire.
// Called before Run has synced its watch, it waits for that (or ctx); from
// the call on, this node neither renews nor acquires anything, even if Stop
// returns first and the API server comes back later.
func (e *Elector) Stop(ctx context.Context) error {
	e.mu.Lock()
	if !e.stopping {
		e.stopping = true
		e.candGen++
		e.renewedAt = time.Time{}
	}
	e.mu.Unlock()
	e.wakeBeat()
	e.kick()
	reply := make(chan error, 1)
	select {
	case e.stopc <- reply:
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Elector) kick() {
	select {
	case e.kickc <- struct{}{}:
	default:
	}
}

// Run watches the leases, heartbeats and decides until ctx ends or Stop.
// When ctx ends without Stop, it stops answering but writes nothing: the
// other nodes take over when the heartbeat expires.
func (e *Elector) Run(ctx context.Context) error {
	defer close(e.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := informers.NewSharedInformerFactoryWithOptions(e.client, 0,
		informers.WithNamespace(e.c.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = labelKind }))
	inf := f.Coordination().V1().Leases().Informer()
	reg, err := inf.AddEventHandler(handler{e})
	if err != nil {
		return fmt.Errorf("l2owner: %w", err)
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	defer cancel() // before Shutdown, which waits for the informer to end
	if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
		return e.end(nil)
	}
	var beatWG, writers sync.WaitGroup
	e.writers = &writers
	writeCtx, stopWrites := context.WithCancel(ctx)
	defer writers.Wait()
	defer stopWrites()
	beatCtx, stopBeat := context.WithCancel(ctx)
	defer stopBeat()
	e.mu.Lock()
	e.stepAt = time.Now()
	stopping := e.stopping
	e.mu.Unlock()
	if stopping { // Stop was called before the watch synced
		err := e.stop(ctx, func() { stopWrites(); writers.Wait() })
		select {
		case reply := <-e.stopc:
			reply <- err
		default:
		}
		return e.end(err)
	}
	beatWG.Go(func() { e.heartbeat(beatCtx) })
	defer beatWG.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := e.step(writeCtx, time.Now())
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return e.end(nil)
		case <-e.kickc:
		case <-timer.C:
		case reply := <-e.stopc:
			err := e.stop(ctx, func() {
				stopBeat()
				beatWG.Wait()
				stopWrites()
				writers.Wait()
			})
			reply <- err
			return e.end(err)
		}
	}
}

// end stops answering for good.
func (e *Elector) end(err error) error {
	if len(e.owned) > 0 {
		clear(e.owned)
		e.announce()
	}
	return err
}

// stop is Stop's work, on Run's goroutine; halt ends the heartbeat and
// the writes under way.
func (e *Elector) stop(ctx context.Context, halt func()) error {
	if len(e.owned) > 0 {
		clear(e.owned)
		e.announce()
	}
	// The heartbeat goes before the handovers: the watch delivers the
	// deletion first, so the next holder, seeing its new lease, no longer
	// ranks this node above itself and hands the address back.
	halt()
	err := e.deleteHeartbeat(ctx)
	v := e.snapshot(time.Now())
	_, writes, _ := e.plan(&v)
	if v.writable {
		ctx, cancel := context.WithTimeout(ctx, e.c.writeTimeout())
		defer cancel()
		e.runBatch(ctx, batch{live: v.live, writes: e.rateLimit(&v, writes, true)})
	}
	// A handover that failed is no loss: with the heartbeat gone the next
	// candidates take the addresses at once.
	return err
}

func (e *Elector) announce() {
	if e.c.OnChange == nil {
		return
	}
	out := make([]netip.Addr, 0, len(e.owned))
	for a := range e.owned {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	e.c.OnChange(out)
}

// newLease is an empty lease of kind, named name, in the namespace.
func (e *Elector) newLease(name, kind string) *coordinationv1.Lease {
	l := &coordinationv1.Lease{}
	l.Name, l.Namespace = name, e.c.Namespace
	l.Labels = map[string]string{labelKind: kind}
	l.Annotations = map[string]string{}
	return l
}
