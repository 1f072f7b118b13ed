package controller

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"log/slog"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// TestLeastPrivilege runs the controller as a user holding only the
// generated config/rbac/controller role (its Role bound in the test's
// namespace): allocation, status, events, pool status, the Announced
// condition and the leader Lease must all work, and nothing may be
// refused.
func TestLeastPrivilege(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	ctx := context.Background()
	b, err := os.ReadFile("../config/rbac/controller/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	user := "bgplb-controller-" + ns
	var cr rbacv1.ClusterRole
	var role rbacv1.Role
	for _, doc := range strings.Split(string(b), "\n---\n") {
		switch {
		case strings.Contains(doc, "kind: ClusterRole"):
			err = yaml.UnmarshalStrict([]byte(doc), &cr)
		case strings.Contains(doc, "kind: Role"):
			err = yaml.UnmarshalStrict([]byte(doc), &role)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(cr.Rules) == 0 || len(role.Rules) == 0 {
		t.Fatalf("role.yaml should hold a ClusterRole and a Role, got %d and %d rules", len(cr.Rules), len(role.Rules))
	}
	cr.Name = user
	role.Name, role.Namespace = user, ns
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user}}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user}}
	for _, o := range []client.Object{&cr, crb, &role, rb} {
		if err := k.c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.c.Delete(context.Background(), o) })
	}
	cfg, err := k.env.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}

	var logs lockedBuffer
	k.pool(t, "rbac-"+ns[len(ns)-5:], []string{"198.51.100.200-198.51.100.201"})
	k.runControllerAs(t, cfg, RunOptions{
		Options:        Options{HandleUnclassed: true, Log: slog.New(slog.NewTextHandler(&logs, nil))},
		LeaderElection: true, LeaderElectionNamespace: ns, LeaderElectionID: "bgplb-controller",
	})
	k.service(t, ns, "web")
	k.waitService(t, ns, "web", "an address", allocated)
	k.waitEvent(t, ns, "web", EventAllocated, "198.51.100.200")
	// The Announced condition reads BGPRouters and both kinds of policy
	// (and watches the other kinds it needs: the controller would not
	// start without them).
	k.waitService(t, ns, "web", "Announced", announcedIs(metav1.ConditionFalse, msgNothing))
	var lease coordinationv1.Lease
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bgplb-controller"}, &lease); err != nil {
		t.Fatalf("leader Lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("the Lease has no holder")
	}
	time.Sleep(time.Second) // let the pool status write land
	if s := logs.String(); strings.Contains(s, "forbidden") {
		t.Errorf("the controller was refused something:\n%s", s)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
