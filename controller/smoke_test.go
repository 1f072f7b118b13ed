package controller

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

func TestAllocatesFromPool(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "smoke", []string{"203.0.113.10-203.0.113.12"})
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	k.service(t, ns, "pihole")
	s := k.waitService(t, ns, "pihole", "an address", allocated)
	if got := ingressIPs(s); len(got) != 1 || got[0] != "203.0.113.10" {
		t.Fatalf("ingress %v, want [203.0.113.10]", got)
	}
	k.waitEvent(t, ns, "pihole", EventAllocated, "203.0.113.10 from pool smoke")
	deadline := metav1.Now().Add(10e9)
	for {
		var p v1alpha1.LoadBalancerPool
		if err := k.c.Get(context.Background(), client.ObjectKey{Name: "smoke"}, &p); err != nil {
			t.Fatal(err)
		}
		if p.Status.AssignedIPv4 == 1 && p.Status.AvailableIPv4 == 2 {
			break
		}
		if metav1.Now().After(deadline) {
			t.Fatalf("pool status %+v", p.Status)
		}
	}
}
