package health

import (
	"net"
	"net/http"
	"time"
)

// Client holds the connections of the probes. HTTP checks of static backends open a new
// connection each time, as keepalived's HTTP_GET does: the check must prove the backend still
// accepts connections, which a kept-alive one would hide. Node views keep one idle connection
// per node: a director checks a thousand nodes every two seconds, and a new TCP and HTTP
// handshake per check would churn sockets (TIME_WAIT) for no information.
type Client struct {
	dialer net.Dialer
	check  *http.Client
	node   *http.Client
}

// NewClient returns a client.
func NewClient() *Client {
	c := &Client{dialer: net.Dialer{KeepAlive: -1}}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.check = &http.Client{CheckRedirect: noRedirect, Transport: &http.Transport{
		DialContext:       c.dialer.DialContext,
		DisableKeepAlives: true,
		Proxy:             nil, // never a proxy from the environment: checks go to the backend
	}}
	c.node = &http.Client{CheckRedirect: noRedirect, Transport: &http.Transport{
		DialContext:         c.dialer.DialContext,
		MaxIdleConnsPerHost: 1,
		MaxIdleConns:        0, // no global bound: one per node
		IdleConnTimeout:     30 * time.Second,
		Proxy:               nil,
	}}
	return c
}

// Close closes idle connections.
func (c *Client) Close() {
	c.check.CloseIdleConnections()
	c.node.CloseIdleConnections()
}
