package kubenode

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// WaitReady waits until the Node is registered and Ready, failing at once
// with a daemon's log if one of the node's daemons has ended.
func (n *Node) WaitReady(ctx context.Context, c kubernetes.Interface) error {
	return waitReady(ctx, c, n.Name, n.Err)
}

// WaitReady waits until the Node name is Ready, for a caller that has only
// the node's directory (the node was started by another process).
func WaitReady(ctx context.Context, c kubernetes.Interface, name string) error {
	return waitReady(ctx, c, name, func() error { return nil })
}

func waitReady(ctx context.Context, c kubernetes.Interface, name string, alive func() error) error {
	last := "not registered"
	for {
		if err := alive(); err != nil {
			return err
		}
		node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = "no Ready condition"
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					if cond.Status == corev1.ConditionTrue {
						return nil
					}
					last = fmt.Sprintf("Ready=%s: %s", cond.Status, cond.Message)
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubenode: node %s not Ready: %w (%s)", name, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
