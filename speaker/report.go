package speaker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"maps"
	"slices"
	"strings"

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

// reporter writes this node's report objects. It remembers what it wrote,
// so a sync that changes nothing costs no API call; the objects are only
// ever written by this node's speaker, so the memory is the truth once the
// first write of each has happened.
type reporter struct {
	c    client.Client
	node string
	log  *slog.Logger
	// written are the ServiceAnnouncements (namespace/name) and
	// BGPSessionStatuses (name) as last written; loaded lists what an
	// earlier run of this speaker left, to be cleaned up.
	anns     map[types.NamespacedName]v1alpha1.ServiceAnnouncementStatus
	sessions map[string]v1alpha1.BGPSessionStatusStatus
	loaded   bool
}

func newReporter(c client.Client, node string, log *slog.Logger) *reporter {
	return &reporter{c: c, node: node, log: log,
		anns: map[types.NamespacedName]v1alpha1.ServiceAnnouncementStatus{}, sessions: map[string]v1alpha1.BGPSessionStatusStatus{}}
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

// desiredReports are the objects a plan and the sessions' state call for.
func desiredReports(node string, res plan.Result, st []announce.PeerStatus) (map[types.NamespacedName]annReport, map[string]v1alpha1.BGPSessionStatusStatus) {
	up := map[string]bool{}
	sessions := map[string]v1alpha1.BGPSessionStatusStatus{}
	for _, p := range st {
		s := v1alpha1.BGPSessionStatusStatus{
			PeerAddress: p.Addr.String(), State: p.State.String(),
			PrefixesAnnounced: int32(p.Announced), LastError: truncate(p.LastError, 1024),
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
	for key, a := range anns {
		slices.Sort(a.status.Prefixes)
		slices.Sort(a.status.Peers)
		anns[key] = a
	}
	return anns, sessions
}

type annReport struct {
	service string
	status  v1alpha1.ServiceAnnouncementStatus
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

// write brings the report objects in line with res and the sessions.
// eps are this node's ready endpoints per Service.
func (r *reporter) write(ctx context.Context, res plan.Result, eps map[lbmodel.Key]int32, st []announce.PeerStatus) {
	if !r.loaded {
		if err := r.load(ctx); err != nil {
			r.log.Warn("reading this node's reports", "err", err)
			return
		}
	}
	anns, sessions := desiredReports(r.node, res, st)
	for key, a := range anns {
		a.status.Endpoints = eps[lbmodel.Key{Namespace: key.Namespace, Name: a.service}]
		if old, ok := r.anns[key]; ok && equality.Semantic.DeepEqual(old, a.status) {
			continue
		}
		if err := r.putAnnouncement(ctx, key, a); err != nil {
			r.log.Warn("writing a ServiceAnnouncement", "name", key, "err", err)
			continue
		}
		r.anns[key] = a.status
	}
	for key := range maps.Clone(r.anns) {
		if _, ok := anns[key]; ok {
			continue
		}
		obj := &v1alpha1.ServiceAnnouncement{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		if err := r.c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
			r.log.Warn("deleting a ServiceAnnouncement", "name", key, "err", err)
			continue
		}
		delete(r.anns, key)
	}
	r.writeSessions(ctx, sessions)
}

func (r *reporter) putAnnouncement(ctx context.Context, key types.NamespacedName, a annReport) error {
	obj := &v1alpha1.ServiceAnnouncement{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{v1alpha1.LabelNode: labelValue(r.node), v1alpha1.LabelService: a.service}},
		Spec: v1alpha1.ServiceAnnouncementSpec{Service: a.service, Node: r.node},
	}
	if _, had := r.anns[key]; !had {
		if err := r.c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if err := r.c.Get(ctx, key, obj); err != nil {
		return err
	}
	obj.Status = a.status
	return r.c.Status().Update(ctx, obj)
}

func (r *reporter) writeSessions(ctx context.Context, want map[string]v1alpha1.BGPSessionStatusStatus) {
	for name, st := range want {
		if old, ok := r.sessions[name]; ok && equality.Semantic.DeepEqual(old, st) {
			continue
		}
		if err := r.putSession(ctx, name, st); err != nil {
			r.log.Warn("writing a BGPSessionStatus", "name", name, "err", err)
			continue
		}
		r.sessions[name] = st
	}
	for name := range maps.Clone(r.sessions) {
		if _, ok := want[name]; ok {
			continue
		}
		obj := &v1alpha1.BGPSessionStatus{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := r.c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
			r.log.Warn("deleting a BGPSessionStatus", "name", name, "err", err)
			continue
		}
		delete(r.sessions, name)
	}
}

func (r *reporter) putSession(ctx context.Context, name string, st v1alpha1.BGPSessionStatusStatus) error {
	peer := strings.TrimPrefix(name, r.node+".")
	obj := &v1alpha1.BGPSessionStatus{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelNode: labelValue(r.node)}},
		Spec:       v1alpha1.BGPSessionStatusSpec{Node: r.node, Peer: peer},
	}
	if _, had := r.sessions[name]; !had {
		if err := r.c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if err := r.c.Get(ctx, types.NamespacedName{Name: name}, obj); err != nil {
		return err
	}
	obj.Status = st
	return r.c.Status().Update(ctx, obj)
}

// load learns what an earlier run of this speaker left, so that write
// removes what no longer holds. The report kinds are not cached: reads go
// to the API server.
func (r *reporter) load(ctx context.Context) error {
	sel := client.MatchingLabels{v1alpha1.LabelNode: labelValue(r.node)}
	var anns v1alpha1.ServiceAnnouncementList
	if err := r.c.List(ctx, &anns, sel); err != nil {
		return err
	}
	for _, a := range anns.Items {
		if a.Spec.Node == r.node {
			r.anns[types.NamespacedName{Namespace: a.Namespace, Name: a.Name}] = a.Status
		}
	}
	var sess v1alpha1.BGPSessionStatusList
	if err := r.c.List(ctx, &sess, sel); err != nil {
		return err
	}
	for _, s := range sess.Items {
		if s.Spec.Node == r.node {
			r.sessions[s.Name] = s.Status
		}
	}
	r.loaded = true
	return nil
}

// clear removes this node's announcements on shutdown: its routes are
// withdrawn. Session reports stay, saying how the sessions ended.
func (r *reporter) clear(ctx context.Context, st []announce.PeerStatus) {
	r.write(ctx, plan.Result{}, nil, st)
}
