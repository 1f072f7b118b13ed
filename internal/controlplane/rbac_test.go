package controlplane_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/internal/kubetest"
)

// roles is shaped like controller-gen's output: a ClusterRole, then a Role
// naming a namespace of its own.
const roles = `---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: grant-test
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: grant-test
  namespace: somewhere-else
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
`

// TestGrant: the user gets the ClusterRole everywhere and the Role in the
// namespace it is granted in, not in the one the file names nor any other.
func TestGrant(t *testing.T) {
	env := kubetest.Start(t)
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	mine, other := env.Namespace(t), env.Namespace(t)
	for range 2 { // a repeated grant does no harm
		if err := controlplane.Grant(ctx, admin, []byte(roles), "grant-user", mine); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := env.UserConfig("grant-user")
	if err != nil {
		t.Fatal(err)
	}
	user, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := user.List(ctx, &corev1.NodeList{}); err != nil {
		t.Errorf("list nodes with the ClusterRole: %v", err)
	}
	get := func(ns string) error {
		return user.Get(ctx, client.ObjectKey{Namespace: ns, Name: "none"}, &corev1.Secret{})
	}
	if err := get(mine); !apierrors.IsNotFound(err) {
		t.Errorf("get a Secret in the granted namespace: %v, want NotFound", err)
	}
	if err := get(other); !apierrors.IsForbidden(err) {
		t.Errorf("get a Secret in another namespace: %v, want Forbidden", err)
	}
}
