// Package speaker is `bgplb speaker`, the agent on every node: it watches
// Services, EndpointSlices, its Node and the bgplb CRDs, asks the pure
// planner (speaker/plan) what this node announces to each peer, hands that
// to the BGP announcer (speaker/announce), and reports what it announces
// (ServiceAnnouncement, BGPSessionStatus).
//
// Every change of anything watched triggers one sync: read everything from
// the informer caches, plan, announce, report. Syncs coalesce, so a burst
// of changes costs one plan. The caches outlive an API server outage: the
// last known plan stays announced until the API server is back.
package speaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/internal/metricsrv"
	"github.com/bgplb/bgplb/l2"
	"github.com/bgplb/bgplb/speaker/announce"
	"github.com/bgplb/bgplb/speaker/healthcheck"
	"github.com/bgplb/bgplb/speaker/plan"
	"github.com/bgplb/bgplb/view"
)

// Options configure a speaker.
type Options struct {
	// NodeName is the Node this speaker runs on (the downward API's
	// spec.nodeName in a DaemonSet).
	NodeName string
	// Namespace holds peers' password Secrets that name no namespace.
	Namespace string
	// HandleUnclassed must match the controller's flag.
	HandleUnclassed bool
	// APISocket serves `bgplb neighbor` / `bgplb rib`; empty: off.
	APISocket string
	// ListenAddrs accept sessions from routers, for passive BGPRouters.
	ListenAddrs []netip.AddrPort
	// MetricsAddr serves /metrics; empty: off.
	MetricsAddr string
	// ShutdownTimeout bounds the withdraw-and-close on stop.
	ShutdownTimeout time.Duration
	// DrainTime is how long a node going away announces with
	// GRACEFUL_SHUTDOWN before it withdraws (RFC 8326); 0 is
	// DefaultDrainTime, negative withdraws at once.
	DrainTime time.Duration
	// RestartTime is the graceful restart time announced to BGPRouters
	// with spec.gracefulRestart; 0 is DefaultRestartTime.
	RestartTime time.Duration
	// PodName is this speaker's pod (in Namespace), whose DaemonSet tells
	// a SIGTERM for good from a restart; empty: only the Node tells.
	PodName string
	// HealthCheck paces the probes of kube-proxy's health check for
	// externalTrafficPolicy Local Services (speaker/healthcheck); a zero
	// Interval probes nothing (the endpoints alone decide).
	HealthCheck healthcheck.Config
	// L2 paces the election of L2 owners; zero values take
	// l2owner's defaults.
	L2  L2Timing
	Log *slog.Logger

	// l2Interfaces, when set, stands for l2.Interfaces (tests: a node
	// with an interface that exists nowhere, so nothing reaches a wire).
	l2Interfaces func() ([]l2.Interface, error)
}

// Speaker is a running speaker.
type Speaker struct {
	o     Options
	log   *slog.Logger
	c     client.Client
	cache cache.Cache
	// api reads past the cache (the SIGTERM decision, the restart markers).
	api    client.Reader
	events events.EventRecorder
	ann    *announce.Announcer
	bfd    *bfdSessions
	hc     *healthcheck.Prober // nil: no probes
	l2     *l2Mode
	kick   chan struct{}
	lg     lastGood
	rep    *reporter
	// The plan, peers and endpoint counts of the last sync, and the
	// configuration problems last logged: the run goroutine's alone.
	last      plan.Result
	eps       map[lbmodel.Key]int32
	owner     *metav1.OwnerReference
	peers     []announce.PeerConfig
	warned    []string
	passwords map[secretRef]password
	// refused are the peers this node has no session settings for (say
	// a passwordSecret in another namespace), as the session reports show
	// them: Idle, with the reason as the last error.
	refused []announce.PeerStatus
	// node and snap are the last sync's Node and planner input; drain
	// the node's drain, drainTimer fires at its deadline.
	node       *corev1.Node
	snap       plan.Snapshot
	drain      drainState
	drainTimed bool // the first sync has set drain
	drainTimer *time.Timer
	// restarting are the peers whose first session is a graceful restart
	// (restart markers found at start), until it is up.
	restarting map[string]bool
	// For the metrics: the drain phase now, the sessions back up after
	// a graceful restart.
	phase     atomic.Uint32
	restarted atomic.Uint64
}

// Run runs the speaker until ctx ends; then, if the node is going away
// (shutdownMode), it drains, withdraws every route and closes every session
// with an RFC 8203 message naming the node; otherwise it is a restart, and
// the sessions that negotiated graceful restart are left for the routers
// to keep the routes (the others close as above).
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	if o.NodeName == "" {
		return errors.New("speaker: no node name (set --node-name or NODE_NAME)")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.DrainTime == 0 {
		o.DrainTime = DefaultDrainTime
	}
	if o.RestartTime == 0 {
		o.RestartTime = DefaultRestartTime
	}
	if o.RestartTime < time.Second || o.RestartTime > session.MaxRestartTime {
		return fmt.Errorf("speaker: restart time %v is not between 1s and %v", o.RestartTime, session.MaxRestartTime)
	}
	mgr, err := newManager(cfg, o)
	if err != nil {
		return err
	}
	s := &Speaker{
		o: o, log: o.Log, c: mgr.GetClient(), cache: mgr.GetCache(), api: mgr.GetAPIReader(),
		events: mgr.GetEventRecorder("bgplb-speaker"), kick: make(chan struct{}, 1),
		drainTimer: time.NewTimer(time.Hour),
	}
	s.drainTimer.Stop() // armed by the first drain
	s.rep = newReporter(s.c, o.NodeName, o.Log)
	if s.l2, err = newL2Mode(cfg, o, s.poke, s.serviceEvent); err != nil {
		return err
	}
	if err := mgr.Add(manager.RunnableFunc(s.run)); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

func newManager(cfg *rest.Config, o Options) (manager.Manager, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, discoveryv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Logger:  logr.FromSlogHandler(o.Log.Handler()),
		Metrics: metricsserver.Options{BindAddress: "0"},
		// The reports are written only here and read back rarely; Secrets
		// are read once per peer change (or minute) and need no
		// cluster-wide watch.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{
			&v1alpha1.ServiceAnnouncement{}, &v1alpha1.BGPSessionStatus{}, &corev1.Secret{}}}},
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{
				// Only this node's Node object: a DaemonSet watching every
				// Node would cost the API server nodes² watch events.
				&corev1.Node{}: {Field: fields.OneTermEqualSelector("metadata.name", o.NodeName)},
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("speaker manager: %w", err)
	}
	return mgr, nil
}

// watched are the kinds whose changes trigger a sync.
func watched() []client.Object {
	return []client.Object{&corev1.Node{}, &corev1.Service{}, &discoveryv1.EndpointSlice{},
		&v1alpha1.LoadBalancerPool{}, &v1alpha1.BGPRouter{}, &v1alpha1.BGPAnnouncementPolicy{}, &v1alpha1.BFDPolicy{},
		&v1alpha1.L2AnnouncementPolicy{}}
}

func (s *Speaker) run(ctx context.Context) error {
	// The manager's cache is started before runnables; informers are
	// fetched (and so started) here, then awaited.
	c := s.cache
	for _, obj := range watched() {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { s.poke() },
			UpdateFunc: func(any, any) { s.poke() },
			DeleteFunc: func(any) { s.poke() },
		}); err != nil {
			return err
		}
	}
	if !c.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	// BFD runs in the node's namespace, as the BGP sessions do (the
	// speaker is on the host network). Its sessions end after the
	// announcer's (this runs last), telling the routers AdminDown: a
	// speaker stopping on purpose is no failure of the path.
	bfdCtx, stopBFD := context.WithCancel(context.Background())
	bfdMgr := bfd.NewManager(bfdCtx, bfd.Options{Logger: s.log.With("part", "bfd")})
	s.bfd = newBFDSessions(bfdCtx, s.log.With("part", "bfd"), bfdMgr, func(name string) { s.ann.Reset(name) })
	defer func() {
		s.bfd.shutdown()
		stopBFD()
		s.bfd.wait()
	}()
	// What an earlier run on this node left, read once before the reporter
	// runs (it owns what it loaded from then on): the Services it withheld
	// for their health check, and the restart markers (unread, they cost
	// only the R bit).
	if err := s.rep.load(ctx); err != nil {
		s.log.Warn("reading this node's reports: no restart bit, no withheld Service remembered", "err", err)
	}
	s.noteRestarting(s.rep.restarting)
	if s.o.HealthCheck.Interval > 0 {
		// The probes end with run: a stopping speaker plans no more.
		hcCtx, stopHC := context.WithCancel(ctx)
		s.hc = healthcheck.New(hcCtx, s.o.HealthCheck, s.log.With("part", "healthcheck"), s.poke)
		s.hc.Withheld(s.rep.withheld())
		defer func() {
			stopHC()
			s.hc.Wait()
		}()
	}
	s.ann = announce.New(announce.Options{Log: s.log.With("part", "bgp"), ListenAddrs: s.o.ListenAddrs, OnSession: s.bfd.session})
	// The election runs until the shutdown has handed the addresses over
	// (l2Mode.stop, first thing in shutdown).
	elCtx, stopEl := context.WithCancel(context.Background())
	elDone := make(chan struct{})
	go func() {
		defer close(elDone)
		if err := s.l2.el.Run(elCtx); err != nil {
			s.log.Error("l2 election", "err", err)
		}
	}()
	defer func() {
		stopEl()
		<-elDone
	}()
	// The reports are written off this loop: planning never waits for the
	// API server.
	repCtx, stopRep := context.WithCancel(context.Background())
	repDone := make(chan struct{})
	go func() {
		defer close(repDone)
		s.rep.run(repCtx)
	}()
	annCtx, stopAnn := context.WithCancel(context.Background())
	annDone := make(chan error, 1)
	go func() { annDone <- s.ann.Run(annCtx) }()
	defer func() {
		s.shutdown(func() {
			stopRep()
			<-repDone
		})
		stopAnn()
		<-annDone
	}()
	if s.o.APISocket != "" {
		go func() {
			if err := view.Serve(ctx, s.o.APISocket, view.Handler(bfdView{Source: s.ann, bfd: s.bfd, l2: s.l2}), s.log.With("part", "api")); err != nil {
				s.log.Error("api", "err", err)
			}
		}()
	}
	if s.o.MetricsAddr != "" {
		if err := s.serveMetrics(ctx); err != nil {
			return err
		}
	}
	defer s.drainTimer.Stop()
	s.log.Info("speaker running", "node", s.o.NodeName)
	// Session state changes are not API events: look again now and then
	// so the reports follow them.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	s.poke()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
			s.sync(ctx)
		case <-s.drainTimer.C:
			s.sync(ctx)
		case <-tick.C:
			if s.l2.refresh(len(s.snap.L2Advertisements) > 0) {
				s.poke()
			}
			s.report()
		}
	}
}

func (s *Speaker) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sync reads the caches, plans, announces and reports.
func (s *Speaker) sync(ctx context.Context) {
	objs, err := s.read(ctx)
	if err != nil {
		s.log.Error("reading the cluster state", "err", err)
		return
	}
	conv := buildSnapshot(objs, s.o.HandleUnclassed, &s.lg)
	probes := s.applyHealth(objs.node, objs.services, &conv.snap)
	s.node = objs.node
	conv.snap.Drain = s.timeDrain(leaving(objs.node), time.Now())
	if len(conv.snap.L2Advertisements) > 0 {
		// Listed on the tick; here only the first time.
		s.l2.refresh(!s.l2.listedOnce())
		conv.snap.Links = s.l2.links()
	}
	s.snap = conv.snap
	res := plan.Plan(conv.snap)
	s.l2.setWants(plan.PlanL2(conv.snap))
	s.setProbes(objs.node, probes, conv.snap.Services, res)
	peers, perr := s.peerConfigs(ctx, objs.node, conv.snap.Peers, res)
	if err := s.ann.SetPeers(peers); err != nil {
		perr = append(perr, err.Error())
	}
	perr = append(perr, s.syncBFD(objs.bfdPolicies, conv.snap.Peers, res)...)
	for name, routes := range res.Peers {
		s.ann.Announce(name, toAnnounce(routes))
	}
	eps := map[lbmodel.Key]int32{}
	for _, sv := range conv.snap.Services {
		eps[sv.Key] = int32(sv.On(s.o.NodeName).Pods())
	}
	problems := slices.Concat(res.Problems, conv.problems, perr)
	s.last, s.peers, s.eps = res, peers, eps
	if o := nodeOwner(objs.node); o != nil {
		s.owner = o
	}
	// Each sync sees them all again: say them once, when they change.
	if !slices.Equal(s.warned, problems) {
		for _, p := range problems {
			s.log.Warn("configuration problem", "problem", p)
		}
		s.warned = problems
	}
	s.report()
}

// read lists everything the planner needs from the caches.
func (s *Speaker) read(ctx context.Context) (objects, error) {
	var o objects
	var node corev1.Node
	if err := s.c.Get(ctx, types.NamespacedName{Name: s.o.NodeName}, &node); err == nil {
		o.node = &node
	} else if client.IgnoreNotFound(err) != nil {
		return o, err
	}
	var svcs corev1.ServiceList
	var eps discoveryv1.EndpointSliceList
	var pools v1alpha1.LoadBalancerPoolList
	var peers v1alpha1.BGPRouterList
	var ads v1alpha1.BGPAnnouncementPolicyList
	var bfds v1alpha1.BFDPolicyList
	var l2s v1alpha1.L2AnnouncementPolicyList
	for _, l := range []client.ObjectList{&svcs, &eps, &pools, &peers, &ads, &bfds, &l2s} {
		if err := s.c.List(ctx, l); err != nil {
			return o, err
		}
	}
	o.services, o.slices, o.pools, o.peers, o.advertisements = svcs.Items, eps.Items, pools.Items, peers.Items, ads.Items
	o.bfdPolicies, o.l2advertisements = bfds.Items, l2s.Items
	return o, nil
}

// peerConfigs are the sessions of the peers the plan selected for this
// node, from the versions in force; a peer whose settings do not work on
// this node (a bad router ID, an unreadable password) keeps its last good
// session settings.
func (s *Speaker) peerConfigs(ctx context.Context, node *corev1.Node, peers []lbmodel.Peer, res plan.Result) ([]announce.PeerConfig, []string) {
	local := localNodeOf(s.o.NodeName, node)
	prev := s.peers
	var out []announce.PeerConfig
	var problems []string
	s.refused = s.refused[:0]
	now := time.Now()
	passwords := map[secretRef]password{}
	for i := range peers {
		p := &peers[i]
		if _, ok := res.Peers[p.Name]; !ok {
			continue
		}
		// Every sync sees every peer again: a password is fetched when its
		// BGPRouter changed or it is a minute old, not on every sync.
		secret := func(ns, name, key string) (string, error) {
			ref := secretRef{p.Name, p.Generation, ns, name, key}
			if pw, ok := s.passwords[ref]; ok && now.Sub(pw.read) < secretTTL {
				passwords[ref] = pw
				return pw.value, nil
			}
			v, err := s.secret(ctx, ns, name, key)
			if err == nil {
				passwords[ref] = password{v, now}
			}
			return v, err
		}
		cfg, err := peerConfig(p, local, s.o.Namespace, secret)
		if err != nil {
			msg := fmt.Sprintf("BGPRouter %s: %v", p.Name, err)
			if i := slices.IndexFunc(prev, func(c announce.PeerConfig) bool { return c.Name == p.Name }); i >= 0 {
				cfg = prev[i]
				msg += "; the last valid settings stay in force"
			} else {
				problems = append(problems, msg)
				s.refused = append(s.refused, announce.PeerStatus{Name: p.Name, Addr: p.Address, State: session.Idle, LastError: msg})
				continue
			}
			problems = append(problems, msg)
		}
		cfg.Session.GracefulRestart = gracefulRestart(p, s.o.RestartTime, s.restarting[p.Name])
		if cfg.Session.Passive && len(s.o.ListenAddrs) == 0 {
			problems = append(problems, fmt.Sprintf("BGPRouter %s is passive but this speaker listens nowhere (--listen)", p.Name))
		}
		out = append(out, cfg)
	}
	s.passwords = passwords
	return out, problems
}

// secretTTL bounds how long a password read from its Secret is reused:
// a rotated Secret takes effect within it (on the next sync).
const secretTTL = time.Minute

// secretRef is one password read: for which peer (at which generation of
// it), from which Secret key.
type secretRef struct {
	peer                 string
	generation           int64
	namespace, name, key string
}

type password struct {
	value string
	read  time.Time
}

func (s *Speaker) secret(ctx context.Context, namespace, name, key string) (string, error) {
	var sec corev1.Secret
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &sec); err != nil {
		return "", err
	}
	v, ok := sec.Data[key]
	if !ok {
		return "", fmt.Errorf("Secret %s/%s has no key %q", namespace, name, key)
	}
	return strings.TrimRight(string(v), "\n"), nil
}

// report hands the reporter what this node announces, from the last plan
// and the sessions' state.
func (s *Speaker) report() {
	st := s.ann.Status()
	s.clearRestarting(st)
	want := desiredReports(s.o.NodeName, s.last, s.eps, slices.Concat(st, s.refused), s.bfd.reports(), s.l2.answers())
	want.owner = s.owner
	s.rep.set(want)
}

func toAnnounce(rs []plan.Route) []announce.Route {
	out := make([]announce.Route, len(rs))
	for i, r := range rs {
		out[i] = announce.Route{Prefix: r.Prefix, Bandwidth: r.Bandwidth}
		if a := r.Attrs; a != nil {
			out[i].LocalPref, out[i].Communities, out[i].LargeCommunities = a.LocalPref, a.Communities, a.LargeCommunities
		}
	}
	return out
}

func (s *Speaker) serveMetrics(ctx context.Context) error {
	ln, err := metricsrv.Listen(s.o.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics address: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s.ann.Status, s.bfd.teardowns.Load, s.bfd.states))
	reg.MustRegister(newRestartCollector(s.phase.Load, s.restarted.Load))
	reg.MustRegister(newL2Collector(s.l2))
	if s.hc != nil {
		reg.MustRegister(newHealthCollector(s.hc.Stats))
	}
	go func() {
		if err := metricsrv.Serve(ctx, ln, prometheus.Gatherers{reg, ctrlmetrics.Registry}, s.log, nil); err != nil {
			s.log.Error("metrics", "err", err)
		}
	}()
	return nil
}

// syncBFD hands the BFD wishes of the peers this node has a session with
// to the BFD sessions, and returns what of them cannot be honoured.
func (s *Speaker) syncBFD(policies []v1alpha1.BFDPolicy, peers []lbmodel.Peer, res plan.Result) []string {
	byName := make(map[string]*v1alpha1.BFDPolicySpec, len(policies))
	for i := range policies {
		byName[policies[i].Name] = &policies[i].Spec
	}
	var mine []lbmodel.Peer
	for _, p := range peers {
		if _, ok := res.Peers[p.Name]; ok {
			mine = append(mine, p)
		}
	}
	want, problems := bfdPeers(mine, byName)
	s.bfd.setPeers(want)
	return problems
}
