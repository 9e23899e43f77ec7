package kubeobj

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Node builds a Node. Without options it has no addresses and no conditions (what a node looks
// like before its kubelet reports); use Ready to add the Ready condition.
func Node(name string, opts ...NodeOption) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{corev1.LabelHostname: name},
	}}
	for _, o := range opts {
		o.applyNode(n)
	}
	return n
}

// WithNodeIP adds an InternalIP address (call it twice for dual stack).
func WithNodeIP(ip string) NodeOption {
	return WithNodeAddress(corev1.NodeInternalIP, ip)
}

// WithNodeAddress adds a status address of any type (InternalIP, ExternalIP, Hostname, ...).
func WithNodeAddress(typ corev1.NodeAddressType, addr string) NodeOption {
	return nodeOption(func(n *corev1.Node) {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: typ, Address: addr})
	})
}

// Ready sets the node's Ready condition to True or False.
func Ready(ready bool) NodeOption {
	return nodeOption(func(n *corev1.Node) { setReadyCondition(n, ready, time.Now()) })
}

// Unschedulable sets spec.unschedulable (as `kubectl cordon` does).
func Unschedulable() NodeOption {
	return nodeOption(func(n *corev1.Node) { n.Spec.Unschedulable = true })
}

// WithTaint adds a taint to the node spec.
func WithTaint(key, value string, effect corev1.TaintEffect) NodeOption {
	return nodeOption(func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	})
}

// NodeReady reports whether n's Ready condition is True (false without one).
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// setReadyCondition sets (or adds) the Ready condition; it reports whether anything changed.
func setReadyCondition(n *corev1.Node, ready bool, now time.Time) bool {
	status, reason, msg := corev1.ConditionFalse, "KubeletNotReady", "set not ready by kubeobj"
	if ready {
		status, reason, msg = corev1.ConditionTrue, "KubeletReady", "set ready by kubeobj"
	}
	t := metav1.NewTime(now)
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			continue
		}
		changed := c.Status != status
		if changed {
			c.LastTransitionTime = t
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = status, reason, msg, t
		return changed
	}
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{
		Type: corev1.NodeReady, Status: status, Reason: reason, Message: msg,
		LastHeartbeatTime: t, LastTransitionTime: t,
	})
	return true
}

// SetNodeReady sets the Ready condition of an existing node through UpdateStatus (there is no
// kubelet to do it), retrying on conflicts.
func SetNodeReady(ctx context.Context, client kubernetes.Interface, name string, ready bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		setReadyCondition(n, ready, time.Now())
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
}
