package kapitest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ravel-lb/ravel/internal/kubeobj"
)

// RESTConfig returns a new admin rest.Config (QPS and burst raised for tests).
func (s *Server) RESTConfig() *rest.Config { return RESTConfigFor(s.Host, s.Token, s.CAFile) }

// RESTConfigFor returns a new admin rest.Config for the server at host (Server.Host) with
// token and caFile (Server.Token, Server.CAFile), for a server that another process started.
func RESTConfigFor(host, token, caFile string) *rest.Config {
	return &rest.Config{
		Host:            host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: caFile},
		QPS:             500,
		Burst:           1000,
		// No Timeout: it would apply to watches too. Use contexts.
	}
}

// RESTConfigAs returns a rest.Config that impersonates user (and groups) through the admin
// credentials, for RBAC tests: requests are authorized as that user.
func (s *Server) RESTConfigAs(user string, groups ...string) *rest.Config {
	c := s.RESTConfig()
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return c
}

// Client returns a new admin clientset. It panics only if the config is invalid, which would be
// a bug in this package.
func (s *Server) Client() kubernetes.Interface {
	c, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		panic(fmt.Sprintf("kapitest: clientset: %v", err))
	}
	return c
}

// Namespace creates a namespace with a unique name derived from the test name and returns it.
// It is not deleted (deletion would never finish without a namespace controller).
func (s *Server) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := s.Client().CoreV1().Namespaces().Create(ctx,
		kubeobj.Namespace("", kubeobj.WithGenerateName(namespacePrefix(t.Name()))), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kapitest: create namespace: %v", err)
	}
	return ns.Name
}

// namespacePrefix turns a test name into a DNS label prefix (GenerateName adds 5 characters).
func namespacePrefix(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	p := strings.Trim(b.String(), "-")
	for strings.Contains(p, "--") {
		p = strings.ReplaceAll(p, "--", "-")
	}
	if len(p) > 50 {
		p = strings.TrimRight(p[:50], "-")
	}
	if p == "" || p[0] < 'a' || p[0] > 'z' {
		p = "t-" + p
	}
	return strings.TrimRight(p, "-") + "-"
}
