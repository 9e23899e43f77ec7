package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/daemon"
	"github.com/ravel-lb/ravel/schema"
)

func init() { extraCommands = append(extraCommands, newStatusCmd) }

func newStatusCmd() *cobra.Command {
	var file, addr, output string
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon's status (config, last reload, last sync, readiness)",
		Long: `Ask the running daemon for its /status on metrics.listen and print it.

The address is --addr, else metrics.listen of --config (a wildcard host is asked on
127.0.0.1). Exit status: 0 when the daemon is ready, 1 when it answers but is not ready or its
last reload was refused, 2 when it cannot be reached.`,
		Example: "  ravel status\n  ravel status --addr 127.0.0.1:10234 --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return &exitError{exitUsage, fmt.Errorf("--output must be text or json, not %q", output)}
			}
			if addr == "" {
				cfg, err := config.Load(file)
				if err != nil {
					return &exitError{exitUsage, fmt.Errorf("finding the daemon's address (give --addr): %w", err)}
				}
				if cfg.Metrics.Listen == "" {
					return &exitError{exitUsage, fmt.Errorf("%s: metrics.listen is empty: the daemon serves no status", file)}
				}
				addr = cfg.Metrics.Listen
			}
			rep, raw, err := fetchStatus(addr)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if output == "json" {
				_, _ = cmd.OutOrStdout().Write(raw)
			} else {
				printStatus(cmd.OutOrStdout(), rep)
			}
			if !rep.Ready || (rep.LastReload != nil && rep.LastReload.Result != daemon.ReloadOK) {
				return &exitError{exitInvalid, nil}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "config", "c", "/etc/ravel/ravel.yaml", "config whose metrics.listen is asked")
	c.Flags().StringVar(&addr, "addr", "", "host:port of the daemon's metrics.listen (overrides --config)")
	c.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return c
}

// fetchStatus GETs /status from addr; a wildcard host (":10234", "0.0.0.0:…") is asked on
// loopback.
func fetchStatus(addr string) (daemon.Report, []byte, error) {
	var rep daemon.Report
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return rep, nil, fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/status"
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return rep, nil, fmt.Errorf("is ravel running? %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return rep, nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return rep, nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return rep, nil, fmt.Errorf("%s: not a ravel status: %w", url, err)
	}
	return rep, raw, nil
}

func printStatus(w io.Writer, r daemon.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), time.Since(t).Round(time.Second))
	}
	ready := "yes"
	if !r.Ready {
		ready = "NO: " + r.NotReady
	}
	fmt.Fprintf(tw, "ravel\t%s on node %s, role %s\n", r.Version, r.Node, r.Role)
	fmt.Fprintf(tw, "ready\t%s\n", ready)
	hash := r.Config.Hash
	if len(hash) > 12 {
		hash = hash[:12]
	}
	fmt.Fprintf(tw, "config\t%s (sha256 %s, %d warnings), loaded %s\n", r.Config.Path, hash, r.Config.Warnings, ago(r.Config.LoadedAt))
	if lr := r.LastReload; lr != nil {
		fmt.Fprintf(tw, "last reload\t%s by %s, %s\n", strings.ToUpper(lr.Result), lr.Trigger, ago(lr.Time))
		if lr.Error != "" {
			fmt.Fprintf(tw, "\t%s\n", lr.Error)
		}
	} else {
		fmt.Fprintf(tw, "last reload\tnone since start\n")
	}
	if ls := r.LastSync; ls != nil {
		fmt.Fprintf(tw, "last sync\t%s %s in %s, %s: %s\n", ls.Kind, ls.Result, ls.Duration, ago(ls.Time), ls.Plan)
		if ls.Error != "" {
			fmt.Fprintf(tw, "\t%s\n", ls.Error)
		}
	}
	fmt.Fprintf(tw, "last good sync\t%s\n", ago(r.LastSuccessfulSync))
	if c := r.Counts; schema.Directs(r.Role) {
		fmt.Fprintf(tw, "kernel\t%d virtual services, %d destinations (%d draining), %d VIPs, %d services without realservers\n",
			c.VirtualServices, c.Destinations, c.Draining, c.VIPs, c.ServicesWithoutRealservers)
	}
	if !r.Snapshot.IsZero() {
		fmt.Fprintf(tw, "kubernetes\tsnapshot %s\n", ago(r.Snapshot))
	}
	if r.DirectorPresent != nil {
		fmt.Fprintf(tw, "coordinator\tdirector present: %t, realserver role active: %t\n", *r.DirectorPresent, r.RealserverActive)
	}
	if r.Rules != "" {
		fmt.Fprintf(tw, "rules\t%s\n", r.Rules)
	}
	if r.IPTablesProblem != "" {
		fmt.Fprintf(tw, "iptables\t%s\n", r.IPTablesProblem)
	}
	if r.ARPProblem != "" {
		fmt.Fprintf(tw, "arp\t%s\n", r.ARPProblem)
	}
	if r.Draining {
		fmt.Fprintf(tw, "health\tDRAINING: health checks answer 503 until the rules are removed\n")
	}
	if len(r.Announced) > 0 || r.BGPDrained || r.Role == schema.RoleBGP {
		fmt.Fprintf(tw, "bgp\tannounced %d VIPs %v, drained %t\n", len(r.Announced), r.Announced, r.BGPDrained)
		for _, w := range r.Withheld {
			fmt.Fprintf(tw, "bgp withheld\t%s: %s\n", w.VIP, w.Reason)
		}
		for _, p := range r.BGPPeers {
			since := ""
			if !p.Since.IsZero() {
				since = ", up " + ago(p.Since)
			}
			if p.Reason != "" && p.State != "established" {
				since = " (" + p.Reason + ")"
			}
			fmt.Fprintf(tw, "bgp peer\t%s %s%s, %d prefixes sent\n", p.Address, p.State, since, p.Sent)
		}
	}
	if schema.Directs(r.Role) {
		fmt.Fprintf(tw, "health\t%d unhealthy, %d services held\n", len(r.Unhealthy), len(r.HealthHold))
	}
	for _, h := range r.HealthHold {
		fmt.Fprintf(tw, "held\t%s: every realserver fails its check; the last healthy ones keep their weights\n", h)
	}
	_ = tw.Flush()
	if len(r.Unhealthy) > 0 {
		fmt.Fprintln(w, "\nunhealthy (weight 0):")
		uw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(uw, "  SERVICE\tBACKEND\tSINCE\tREASON")
		for _, u := range r.Unhealthy {
			fmt.Fprintf(uw, "  %s\t%s\t%s\t%s\n", u.Service, u.Backend, ago(u.Since), u.Reason)
		}
		_ = uw.Flush()
	}
	if lr := r.LastReload; lr != nil && len(lr.Findings) > 0 {
		fmt.Fprintln(w, "\nfindings of the last reload:")
		for _, f := range lr.Findings {
			fmt.Fprintln(w, "  "+f.String())
		}
	}
}
