package schema

import (
	"net/netip"
	"reflect"
	"time"
)

// Default returns the declared defaults of a ClusterConfig. The loader copies them in before
// decoding the file, so a key the file omits keeps the value below.
func Default() ClusterConfig {
	return ClusterConfig{
		APIVersion: APIVersion,
		Kind:       Kind,
		Node: Node{
			Role:         RoleDirector,
			Interface:    "eth0",
			VIPInterface: "ravel0",
		},
		Defaults: Defaults{
			Protocols:    []string{"tcp"},
			IPVS:         IPVSOptions{Scheduler: "wrr", Forwarding: ForwardDR, Flags: []string{}, UpperThreshold: ptr(0), LowerThreshold: ptr(0)},
			DrainTimeout: Duration(30 * time.Second),
			HealthCheck: HealthCheck{Type: CheckNone, Path: "/", ExpectStatus: 200,
				Interval: Duration(2 * time.Second), Timeout: Duration(time.Second), Rise: 2, Fall: 2},
		},
		Colocation:  ColocationIsolated,
		IPVSSysctls: map[string]int{},
		Coordinator: Coordinator{Listen: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Ports: []int{44444}, FailoverTimeout: Duration(time.Second)},
		Rules:       Rules{Backend: RulesIPTables, Table: "ravel", InZone: true},
		IPTables:    IPTables{Chain: "RAVEL", Backend: "auto"},
		Health: Health{Listen: ":10236", CheckRealservers: true, Interval: Duration(2 * time.Second),
			Timeout: Duration(time.Second), Rise: 2, Fall: 2, MaxInFlight: 256},
		Management: Management{Protocol: "tcp"},
		ARP:        ARP{Interval: Duration(5 * time.Second)},
		Resync:     Duration(60 * time.Second),
		Metrics:    Metrics{Listen: "127.0.0.1:10234"},
	}
}

// DefaultKubernetes is what a `kubernetes:` section starts from before its keys are decoded.
func DefaultKubernetes() Kubernetes {
	return Kubernetes{
		NodeSelector:      map[string]string{},
		Debounce:          Debounce{Quiet: Duration(100 * time.Millisecond), MaxDelay: Duration(time.Second)},
		KeepLastEndpoints: true,
	}
}

// DefaultBGP is what a `bgp:` section starts from.
func DefaultBGP() BGP {
	return BGP{ListenPort: -1, Communities: []string{}, LargeCommunities: []string{}}
}

// DefaultBGPPeer is what each BGP peer starts from.
func DefaultBGPPeer() BGPPeer {
	return BGPPeer{HoldTime: Duration(90 * time.Second), KeepaliveTime: Duration(30 * time.Second), ConnectRetry: Duration(5 * time.Second),
		BFD:             BFD{MinInterval: Duration(300 * time.Millisecond), Multiplier: 3},
		GracefulRestart: GracefulRestart{RestartTime: Duration(120 * time.Second)}}
}

// DefaultBackend is what each static backend starts from.
func DefaultBackend() Backend { return Backend{Weight: ptr(1)} }

// DefaultFor returns what a new object of type t starts from when the file creates one (a
// kubernetes section, a backend in a list), and false for types that start from zero values.
// The loader and the JSON Schema generator both use it.
func DefaultFor(t reflect.Type) (reflect.Value, bool) {
	switch t {
	case reflect.TypeFor[Kubernetes]():
		return reflect.ValueOf(DefaultKubernetes()), true
	case reflect.TypeFor[Backend]():
		return reflect.ValueOf(DefaultBackend()), true
	case reflect.TypeFor[BGP]():
		return reflect.ValueOf(DefaultBGP()), true
	case reflect.TypeFor[BGPPeer]():
		return reflect.ValueOf(DefaultBGPPeer()), true
	}
	return reflect.Value{}, false
}

func ptr[T any](v T) *T { return &v }
