// Package deploy holds the Kubernetes manifests (deploy/base, a Kustomize base) and their
// test: every manifest is created on a real kube-apiserver with server-side dry run.
package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/internal/kapitest"
)

// base reads deploy/base's kustomization and decodes every resource it lists, strictly (a
// misspelt field is an error here, as kubectl's strict validation makes it).
func base(t *testing.T) []runtime.Object {
	t.Helper()
	data, err := os.ReadFile("base/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	for _, r := range k.Resources {
		data, err := os.ReadFile(filepath.Join("base", r))
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if err := yaml.UnmarshalStrict(data, reflect.New(reflect.TypeOf(obj).Elem()).Interface()); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		objs = append(objs, obj)
	}
	if len(objs) != 7 {
		t.Fatalf("%d resources in base/kustomization.yaml, want 7", len(objs))
	}
	return objs
}

// TestManifestsDryRun creates every manifest of deploy/base on a real kube-apiserver with
// dryRun=All: the server's own validation and defaulting pass. The namespace is created for
// real first (a dry run of a namespaced object needs its namespace).
func TestManifestsDryRun(t *testing.T) {
	objs := base(t)
	srv := kapitest.Start(t)
	c := kubernetes.NewForConfigOrDie(srv.RESTConfig())
	ctx := context.Background()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Namespace:
			if _, err = c.CoreV1().Namespaces().Create(ctx, o, dry); err == nil {
				_, err = c.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
			}
		case *corev1.ServiceAccount:
			_, err = c.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, dry)
		case *corev1.ConfigMap:
			_, err = c.CoreV1().ConfigMaps(o.Namespace).Create(ctx, o, dry)
		case *rbacv1.ClusterRole:
			_, err = c.RbacV1().ClusterRoles().Create(ctx, o, dry)
		case *rbacv1.ClusterRoleBinding:
			_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, o, dry)
		case *appsv1.DaemonSet:
			_, err = c.AppsV1().DaemonSets(o.Namespace).Create(ctx, o, dry)
		case *policyv1.PodDisruptionBudget:
			_, err = c.PolicyV1().PodDisruptionBudgets(o.Namespace).Create(ctx, o, dry)
		default:
			t.Fatalf("no dry run for %T", o)
		}
		if err != nil {
			t.Errorf("%T: %v", o, err)
		}
	}
}

// TestManifestsAgree: the ClusterRole is kube/rbac.yaml's (the one kube's RBAC test proves
// sufficient), the ConfigMap's ravel.yaml loads with ravel's own loader as a realserver with
// metrics where the probes look, and the DaemonSet has only NET_ADMIN and NET_RAW.
func TestManifestsAgree(t *testing.T) {
	var role *rbacv1.ClusterRole
	var cm *corev1.ConfigMap
	var ds *appsv1.DaemonSet
	for _, o := range base(t) {
		switch o := o.(type) {
		case *rbacv1.ClusterRole:
			role = o
		case *corev1.ConfigMap:
			cm = o
		case *appsv1.DaemonSet:
			ds = o
		}
	}
	data, err := os.ReadFile("../kube/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var proven rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &proven); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(role.Rules, proven.Rules) {
		t.Errorf("deploy's ClusterRole rules %+v, want kube/rbac.yaml's %+v", role.Rules, proven.Rules)
	}

	cfg, err := config.Parse("configmap ravel.yaml", []byte(cm.Data["ravel.yaml"]))
	if err != nil {
		t.Fatalf("the ConfigMap's ravel.yaml: %v", err)
	}
	if cfg.Node.Role != "realserver" || cfg.Kubernetes == nil || cfg.Metrics.Listen != ":10234" {
		t.Errorf("the ConfigMap's config: role %q, kubernetes %v, metrics.listen %q; want realserver, set, :10234",
			cfg.Node.Role, cfg.Kubernetes != nil, cfg.Metrics.Listen)
	}
	pod := ds.Spec.Template.Spec
	ctr := pod.Containers[0]
	caps := ctr.SecurityContext.Capabilities
	if !pod.HostNetwork || ctr.SecurityContext.Privileged != nil || !reflect.DeepEqual(caps.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) ||
		!reflect.DeepEqual(caps.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("DaemonSet: hostNetwork %v, privileged %v, capabilities %+v; want host network, NET_ADMIN and NET_RAW only", pod.HostNetwork, ctr.SecurityContext.Privileged, caps)
	}
	if ctr.LivenessProbe.HTTPGet.Path != "/healthz" || ctr.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		ctr.LivenessProbe.HTTPGet.Port.IntValue() != 10234 {
		t.Errorf("probes %+v %+v, want /healthz and /readyz on the metrics port", ctr.LivenessProbe.HTTPGet, ctr.ReadinessProbe.HTTPGet)
	}
}

// TestAlertRules runs Prometheus's own checker on the alert rules: `promtool check rules`
// (hack/promtool/build.sh builds it; PROMTOOL names it). Without it the test skips, unless
// RAVEL_REQUIRE_KAPI is set (make test), where a missing tool is a failure.
func TestAlertRules(t *testing.T) {
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		out, err := exec.Command("../hack/promtool/build.sh", "--cached").Output()
		if err == nil {
			promtool = strings.TrimSpace(string(out))
		}
	}
	if promtool == "" {
		if os.Getenv("RAVEL_REQUIRE_KAPI") != "" {
			t.Fatal("promtool is missing: run hack/promtool/build.sh (make test does)")
		}
		t.Skip("promtool is missing: run hack/promtool/build.sh")
	}
	out, err := exec.Command(promtool, "check", "rules", "prometheus/alerts.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS: 7 rules found") {
		t.Errorf("promtool check rules: %s, want 7 rules", out)
	}
}
