package kubetest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// CreateNamespace creates a namespace named prefix plus a suffix the server
// picks, and returns its name. prefix is cut down to a valid name if needed.
func (e *Env) CreateNamespace(ctx context.Context, prefix string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(prefix)}}
	got, err := e.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("kubetest: create namespace: %w", err)
	}
	return got.Name, nil
}

// nonName matches what may not appear in a namespace name.
var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// namespacePrefix turns any text (a test name) into a GenerateName prefix:
// lower-case alphanumerics and single dashes, starting with a letter, short
// enough to leave room for the server's 5-character suffix within the 63
// a namespace name may have, and ending with a dash.
func namespacePrefix(s string) string {
	const maxLen = 40
	p := strings.Trim(nonName.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if p == "" || p[0] < 'a' || p[0] > 'z' {
		p = "t-" + p
	}
	if len(p) > maxLen {
		p = p[:maxLen]
	}
	return strings.TrimRight(p, "-") + "-"
}

// DeleteNamespace deletes the namespace and everything in it, and waits
// until it is gone. In a real cluster kube-controller-manager's namespace
// controller does this; here nothing would, and a deleted namespace would
// stay Terminating with its objects still visible to every cluster-wide
// watch, where they would disturb the next test's controller. Objects are
// deleted without grace (no kubelet confirms a Pod's end) and their
// finalizers are dropped (the controller that would honour them may be
// stopped already).
func (e *Env) DeleteNamespace(ctx context.Context, ns string) error {
	resources, err := namespacedResources(e.Client.Discovery())
	if err != nil {
		return err
	}
	// Sweeping every kind draws deprecation warnings (v1 Endpoints, Jobs'
	// orphaned Pods) that say nothing about the test: drop them.
	quiet := rest.CopyConfig(e.Config)
	quiet.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(quiet)
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	zero := int64(0)
	var errs []error
	for _, r := range resources {
		api := dyn.Resource(r).Namespace(ns)
		err := api.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if err != nil && !ignorable(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", r.Resource, err))
			continue
		}
		list, err := api.List(ctx, metav1.ListOptions{})
		if err != nil {
			if !ignorable(err) {
				errs = append(errs, fmt.Errorf("list %s: %w", r.Resource, err))
			}
			continue
		}
		for _, item := range list.Items {
			if len(item.GetFinalizers()) == 0 {
				continue
			}
			patch := []byte(`{"metadata":{"finalizers":null}}`)
			_, err := api.Patch(ctx, item.GetName(), types.MergePatchType, patch, metav1.PatchOptions{})
			if err != nil && !ignorable(err) {
				errs = append(errs, fmt.Errorf("drop finalizers of %s %s: %w", r.Resource, item.GetName(), err))
			}
		}
	}
	if err := e.finalizeNamespace(ctx, ns); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubetest: delete namespace %s: %w", ns, err)
	}
	return nil
}

// finalizeNamespace deletes the namespace, clears the finalizer the
// namespace controller would have cleared, and waits until it is gone.
func (e *Env) finalizeNamespace(ctx context.Context, ns string) error {
	api := e.Client.CoreV1().Namespaces()
	if err := api.Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	return e.Poll(ctx, "namespace "+ns+" to go", func(ctx context.Context) error {
		got, err := api.Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(got.Spec.Finalizers) > 0 {
			got.Spec.Finalizers = nil
			if _, err := api.Finalize(ctx, got, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		return errors.New("still there")
	})
}

// namespacedResources lists the namespaced resources that can be listed
// and deleted by collection, once each (in the group's preferred version).
// A group whose discovery fails (an aggregated API that is down) is left
// out rather than failing the cleanup.
func namespacedResources(d discovery.DiscoveryInterface) ([]schema.GroupVersionResource, error) {
	lists, err := d.ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("kubetest: discovery: %w", err)
	}
	var out []schema.GroupVersionResource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !hasVerbs(r.Verbs, "list", "deletecollection") {
				continue // subresources, and kinds that cannot be swept
			}
			out = append(out, gv.WithResource(r.Name))
		}
	}
	return out, nil
}

func hasVerbs(have metav1.Verbs, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// ignorable errors mean there is nothing (left) to do.
func ignorable(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err)
}
