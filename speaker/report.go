package speaker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/announce"
	"github.com/bgplb/bgplb/speaker/plan"
)

// reporter writes this node's report objects, on a goroutine of its own:
// the planning loop hands it the latest desired state (set) and never
// waits for the API server. States handed over while it writes replace
// each other, so a burst of changes costs the writes of its end state
// only, at the client's rate limit (--kube-api-qps).
//
// It remembers what it wrote, so a state that changes nothing costs no
// API call; the objects are only ever written by this node's speaker, so
// the memory is the truth once the first write of each has happened.
type reporter struct {
	c    client.Client
	node string
	log  *slog.Logger
	// wake is poked by set; mu guards next.
	wake chan struct{}
	mu   sync.Mutex
	next *reports

	// The run goroutine's alone (and clear's, after run has ended):
	// written are the ServiceAnnouncements (namespace/name) and
	// BGPSessionStatuses (name) as last written, with whether they carry
	// the Node owner; loaded says an earlier run's leftovers are known.
	anns     map[types.NamespacedName]written[v1alpha1.ServiceAnnouncementStatus]
	sessions map[string]written[v1alpha1.BGPSessionStatusStatus]
	loaded   bool
	// restarting are the peers whose routers kept this node's routes for
	// its restart, from the markers load found.
	restarting map[string]bool
	ownerUID   types.UID
}

// reports are the objects a plan and the sessions' state call for.
type reports struct {
	anns     map[types.NamespacedName]annReport
	sessions map[string]v1alpha1.BGPSessionStatusStatus
	// owner is this node's Node, so that the garbage collector removes
	// the reports with it; nil while the Node is not known.
	owner *metav1.OwnerReference
}

type written[T any] struct {
	status T
	owned  bool
	// healthCheck is the lbmodel.AnnotationHealthCheck written, service
	// the Service's name (ServiceAnnouncements only).
	healthCheck, service string
}

func newReporter(c client.Client, node string, log *slog.Logger) *reporter {
	return &reporter{c: c, node: node, log: log, wake: make(chan struct{}, 1),
		anns:     map[types.NamespacedName]written[v1alpha1.ServiceAnnouncementStatus]{},
		sessions: map[string]written[v1alpha1.BGPSessionStatusStatus]{}}
}

// nodeOwner is the owner reference to a Node.
func nodeOwner(n *corev1.Node) *metav1.OwnerReference {
	if n == nil || n.UID == "" {
		return nil
	}
	return &metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}
}

// set hands over the latest desired state; it never blocks.
func (r *reporter) set(want reports) {
	r.mu.Lock()
	r.next = &want
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take returns the state handed over since the last take, or nil.
func (r *reporter) take() *reports {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.next
	r.next = nil
	return w
}

// pending reports whether a newer state waits.
func (r *reporter) pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next != nil
}

// run writes until ctx ends. A pass that failed is tried again on the
// next hand-over (the planning loop hands one over every second).
func (r *reporter) run(ctx context.Context) {
	var cur *reports
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		if w := r.take(); w != nil {
			cur = w
		}
		if cur != nil {
			r.write(ctx, *cur, true)
		}
	}
}

// labelValue fits a name into a label value (63 characters).
func labelValue(s string) string {
	if len(s) <= 63 {
		return s
	}
	h := sha256.Sum256([]byte(s))
	return s[:46] + "-" + hex.EncodeToString(h[:8])
}

// objectName joins names into one object name, hashing when too long.
func objectName(parts ...string) string {
	s := strings.Join(parts, ".")
	if len(s) <= 253 {
		return s
	}
	h := sha256.Sum256([]byte(s))
	return s[:200] + "." + hex.EncodeToString(h[:16])
}

// desiredReports are the objects a plan and the sessions' state call for;
// eps are this node's endpoints per Service, bfds the sessions' BFD by peer.
func desiredReports(node string, res plan.Result, eps map[lbmodel.Key]int32, st []announce.PeerStatus,
	bfds map[string]*v1alpha1.BGPSessionBFD, l2 map[lbmodel.Key][]v1alpha1.L2Answer) reports {
	up := map[string]bool{}
	sessions := map[string]v1alpha1.BGPSessionStatusStatus{}
	for _, p := range st {
		s := v1alpha1.BGPSessionStatusStatus{
			PeerAddress: p.Addr.String(), State: p.State.String(),
			PrefixesAnnounced: int32(p.Announced), LastError: truncate(p.LastError, 1024),
			BFD: bfds[p.Name],
		}
		if !p.Since.IsZero() {
			t := metav1.NewTime(p.Since.Truncate(1e9))
			s.Since = &t
		}
		sessions[objectName(node, p.Name)] = s
		up[p.Name] = p.State == session.Established
	}
	// Per Service: the prefixes carrying it and the peers that are up.
	anns := map[types.NamespacedName]annReport{}
	for peer, routes := range res.Peers {
		if !up[peer] {
			continue
		}
		for _, r := range routes {
			for _, k := range r.Services {
				key := types.NamespacedName{Namespace: k.Namespace, Name: objectName(k.Name, node)}
				a := anns[key]
				a.service = k.Name
				a.status.Prefixes = appendUnique(a.status.Prefixes, r.Prefix.String())
				a.status.Peers = appendUnique(a.status.Peers, peer)
				anns[key] = a
			}
		}
	}
	// A Service withheld by the health check keeps (or gets, with no peers)
	// its announcement, carrying the reason for the controller.
	for _, d := range res.Services {
		if d.HealthCheck == "" {
			continue
		}
		key := types.NamespacedName{Namespace: d.Namespace, Name: objectName(d.Name, node)}
		a := anns[key]
		a.service, a.healthCheck = d.Name, truncate(d.HealthCheck, 1024)
		anns[key] = a
	}
	// The addresses this node owns in L2 mode.
	for k, answers := range l2 {
		key := types.NamespacedName{Namespace: k.Namespace, Name: objectName(k.Name, node)}
		a := anns[key]
		a.service = k.Name
		a.status.L2 = answers
		anns[key] = a
	}
	for key, a := range anns {
		slices.Sort(a.status.Prefixes)
		slices.Sort(a.status.Peers)
		a.status.Endpoints = eps[lbmodel.Key{Namespace: key.Namespace, Name: a.service}]
		anns[key] = a
	}
	return reports{anns: anns, sessions: sessions}
}

type annReport struct {
	service     string
	status      v1alpha1.ServiceAnnouncementStatus
	healthCheck string // lbmodel.AnnotationHealthCheck; "" for none
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// write brings the report objects in line with want. With yield, it
// stops early when a newer state is handed over, to write that instead of
// what no longer holds; what it wrote so far is remembered either way.
func (r *reporter) write(ctx context.Context, want reports, yield bool) {
	if want.owner != nil && want.owner.UID != r.ownerUID {
		// A Node recreated under the same name: the garbage collector takes
		// what the old one owned, so learn again what is left.
		r.loaded, r.ownerUID = false, want.owner.UID
	}
	if !r.loaded {
		if err := r.load(ctx); err != nil {
			r.log.Warn("reading this node's reports", "err", err)
			return
		}
	}
	stop := func() bool { return ctx.Err() != nil || yield && r.pending() }
	// Sessions first: few, and what an operator looks at first.
	for name, st := range want.sessions {
		if stop() {
			return
		}
		old, ok := r.sessions[name]
		if ok && old.owned == (want.owner != nil) && equality.Semantic.DeepEqual(old.status, st) {
			continue
		}
		obj := &v1alpha1.BGPSessionStatus{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelNode: labelValue(r.node)}},
			Spec:       v1alpha1.BGPSessionStatusSpec{Node: r.node, Peer: strings.TrimPrefix(name, r.node+".")},
		}
		if err := r.put(ctx, obj, ok, old.owned, want.owner, nil, st); err != nil {
			r.log.Warn("writing a BGPSessionStatus", "name", name, "err", err)
			continue
		}
		r.sessions[name] = written[v1alpha1.BGPSessionStatusStatus]{status: st, owned: want.owner != nil}
	}
	for name := range maps.Clone(r.sessions) {
		if _, ok := want.sessions[name]; ok || stop() {
			continue
		}
		if r.remove(ctx, &v1alpha1.BGPSessionStatus{ObjectMeta: metav1.ObjectMeta{Name: name}}) {
			delete(r.sessions, name)
		}
	}
	// Withdrawn Services before new ones: what is wrong first.
	for key := range maps.Clone(r.anns) {
		if _, ok := want.anns[key]; ok || stop() {
			continue
		}
		if r.remove(ctx, &v1alpha1.ServiceAnnouncement{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}) {
			delete(r.anns, key)
		}
	}
	for key, a := range want.anns {
		if stop() {
			return
		}
		old, ok := r.anns[key]
		if ok && old.owned == (want.owner != nil) && old.healthCheck == a.healthCheck && equality.Semantic.DeepEqual(old.status, a.status) {
			continue
		}
		obj := &v1alpha1.ServiceAnnouncement{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				Labels: map[string]string{v1alpha1.LabelNode: labelValue(r.node), v1alpha1.LabelService: a.service}},
			Spec: v1alpha1.ServiceAnnouncementSpec{Service: a.service, Node: r.node},
		}
		var note map[string]*string
		if !ok || old.healthCheck != a.healthCheck {
			note = map[string]*string{lbmodel.AnnotationHealthCheck: nil}
			if a.healthCheck != "" {
				note[lbmodel.AnnotationHealthCheck] = &a.healthCheck
			}
		}
		if err := r.put(ctx, obj, ok, old.owned, want.owner, note, a.status); err != nil {
			r.log.Warn("writing a ServiceAnnouncement", "name", key, "err", err)
			continue
		}
		r.anns[key] = written[v1alpha1.ServiceAnnouncementStatus]{status: a.status, owned: want.owner != nil, healthCheck: a.healthCheck,
			service: a.service}
	}
}

func (r *reporter) remove(ctx context.Context, obj client.Object) bool {
	if err := r.c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		r.log.Warn("deleting a report", "kind", fmt.Sprintf("%T", obj), "name", obj.GetName(), "err", err)
		return false
	}
	return true
}

// put writes a report object: created unless it exists (had), given the
// owner it lacks (owned: it has one) and the annotations to change (nil
// values remove), and its status set, with no read first: one call for a
// change of status, two for a new object.
func (r *reporter) put(ctx context.Context, obj client.Object, had, owned bool, owner *metav1.OwnerReference, annotations map[string]*string, status any) error {
	if !had {
		if owner != nil {
			obj.SetOwnerReferences([]metav1.OwnerReference{*owner})
		}
		obj.SetAnnotations(setAnnotations(annotations))
		err := r.c.Create(ctx, obj)
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		owned = err == nil && owner != nil
		if err == nil {
			annotations = nil
		}
	}
	meta := map[string]any{}
	if !owned && owner != nil {
		meta["ownerReferences"] = []metav1.OwnerReference{*owner}
	}
	if len(annotations) > 0 {
		meta["annotations"] = annotations
	}
	if len(meta) > 0 {
		p, err := json.Marshal(map[string]any{"metadata": meta})
		if err != nil {
			return err
		}
		if err := r.c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, p)); err != nil {
			return err
		}
	}
	// A JSON patch's add sets /status whole, present or not: no
	// resourceVersion to read first, and no field left over.
	p, err := json.Marshal([]map[string]any{{"op": "add", "path": "/status", "value": status}})
	if err != nil {
		return err
	}
	return r.c.Status().Patch(ctx, obj, client.RawPatch(types.JSONPatchType, p))
}

// load learns what an earlier run of this speaker left, so that write
// removes what no longer holds. The report kinds are not cached: reads go
// to the API server.
func (r *reporter) load(ctx context.Context) error {
	clear(r.anns)
	clear(r.sessions)
	sel := client.MatchingLabels{v1alpha1.LabelNode: labelValue(r.node)}
	var anns v1alpha1.ServiceAnnouncementList
	if err := r.c.List(ctx, &anns, sel); err != nil {
		return err
	}
	for _, a := range anns.Items {
		if a.Spec.Node == r.node {
			r.anns[types.NamespacedName{Namespace: a.Namespace, Name: a.Name}] =
				written[v1alpha1.ServiceAnnouncementStatus]{status: a.Status, owned: r.ownedBy(a.OwnerReferences),
					healthCheck: a.Annotations[lbmodel.AnnotationHealthCheck], service: a.Spec.Service}
		}
	}
	var sess v1alpha1.BGPSessionStatusList
	if err := r.c.List(ctx, &sess, sel); err != nil {
		return err
	}
	for _, s := range sess.Items {
		if s.Spec.Node == r.node {
			r.sessions[s.Name] = written[v1alpha1.BGPSessionStatusStatus]{status: s.Status, owned: r.ownedBy(s.OwnerReferences)}
		}
	}
	r.restarting = restartingPeers(sess.Items, r.node, time.Now())
	r.loaded = true
	return nil
}

// withheld is, once load has read what an earlier run of this speaker
// left, the Services it withheld for their health check: a restart must
// not announce them on the strength of one probe.
func (r *reporter) withheld() []lbmodel.Key {
	var out []lbmodel.Key
	for key, a := range r.anns {
		if a.healthCheck != "" && a.service != "" {
			out = append(out, lbmodel.Key{Namespace: key.Namespace, Name: a.service})
		}
	}
	return out
}

func (r *reporter) ownedBy(refs []metav1.OwnerReference) bool {
	return r.ownerUID != "" && slices.ContainsFunc(refs, func(o metav1.OwnerReference) bool { return o.UID == r.ownerUID })
}

// clear removes this node's announcements on shutdown, after run has
// ended: its routes are withdrawn. One collection delete per namespace
// rather than one call per Service, so that it fits in the shutdown's
// time however many there are. Session reports stay, saying how the
// sessions ended, with their BFD (bfds, by peer): how it last went down.
func (r *reporter) clear(ctx context.Context, st []announce.PeerStatus, owner *metav1.OwnerReference,
	bfds map[string]*v1alpha1.BGPSessionBFD) {
	want := desiredReports(r.node, plan.Result{}, nil, st, bfds, nil)
	want.owner = owner
	namespaces := map[string]bool{}
	for key := range r.anns {
		namespaces[key.Namespace] = true
	}
	for ns := range namespaces {
		err := r.c.DeleteAllOf(ctx, &v1alpha1.ServiceAnnouncement{}, client.InNamespace(ns),
			client.MatchingLabels{v1alpha1.LabelNode: labelValue(r.node)})
		if err != nil {
			r.log.Warn("deleting this node's ServiceAnnouncements", "namespace", ns, "err", err)
			continue
		}
		for key := range r.anns {
			if key.Namespace == ns {
				delete(r.anns, key)
			}
		}
	}
	r.write(ctx, want, false)
}

// setAnnotations are the annotations of a change that sets values (nil
// values, removals, left out); nil when none.
func setAnnotations(change map[string]*string) map[string]string {
	var out map[string]string
	for k, v := range change {
		if v == nil {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = *v
	}
	return out
}
