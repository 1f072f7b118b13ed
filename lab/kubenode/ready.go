package kubenode

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bgplb/bgplb/lab"
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
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		if err := alive(); err != nil {
			return false, lab.Permanent(err)
		}
		node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err // not registered yet
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return true, nil
				}
				return false, fmt.Errorf("Ready=%s: %s", cond.Status, cond.Message)
			}
		}
		return false, errors.New("no Ready condition")
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("kubenode: node %s not Ready: %w", name, err)
	}
	return err
}
