package health

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
)

// WeightHeader carries a node's local endpoint count for one service, as kube-proxy's
// healthCheckNodePort does (0 when the node does not serve it).
const WeightHeader = "X-Load-Balancing-Endpoint-Weight"

// serviceAnswer is the body of GET /healthz?vip=V&port=P&protocol=tcp.
type serviceAnswer struct {
	Node            string     `json:"node"`
	VIP             netip.Addr `json:"vip"`
	Port            uint16     `json:"port"`
	Protocol        string     `json:"protocol"`
	LocalEndpoints  int        `json:"localEndpoints"`
	RulesProgrammed bool       `json:"rulesProgrammed"`
	Draining        bool       `json:"draining"`
}

// NewHandler returns the realserver's health endpoint, read-only: GET /healthz is the whole
// view (200 unless draining or not synced, then 503 with the same body), and
// GET /healthz?vip=V&port=P[&protocol=tcp] answers for one service (200 when the node serves
// it). view is called per request and must be safe for concurrent use.
func NewHandler(view func() NodeView) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		v := view()
		q := r.URL.Query()
		if !q.Has("vip") && !q.Has("port") && !q.Has("protocol") {
			status := http.StatusOK
			if v.Draining || !v.Synced {
				status = http.StatusServiceUnavailable
			}
			if v.Services == nil {
				v.Services = []ServiceView{}
			}
			writeJSON(w, status, v)
			return
		}
		vip, err := netip.ParseAddr(q.Get("vip"))
		if err != nil {
			http.Error(w, "bad vip: "+strconv.Quote(q.Get("vip")), http.StatusBadRequest)
			return
		}
		port, err := strconv.ParseUint(q.Get("port"), 10, 16)
		if err != nil || port == 0 {
			http.Error(w, "bad port: "+strconv.Quote(q.Get("port")), http.StatusBadRequest)
			return
		}
		proto := q.Get("protocol")
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			http.Error(w, "bad protocol: "+strconv.Quote(proto)+" (tcp or udp)", http.StatusBadRequest)
			return
		}
		a := serviceAnswer{Node: v.Node, VIP: vip, Port: uint16(port), Protocol: proto, Draining: v.Draining}
		for _, s := range v.Services {
			if s.VIP == vip && s.Port == uint16(port) && s.Protocol == proto {
				a.LocalEndpoints, a.RulesProgrammed = s.LocalEndpoints, s.RulesProgrammed
			}
		}
		status, weight := http.StatusServiceUnavailable, 0
		if v.Serving(vip, uint16(port), proto) {
			status, weight = http.StatusOK, a.LocalEndpoints
		}
		w.Header().Set(WeightHeader, strconv.Itoa(weight))
		writeJSON(w, status, a)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
