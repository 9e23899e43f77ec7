package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ravel-lb/ravel/kube"
)

// kubeOptions are the Kubernetes source's options for cfg (kube.OptionsFrom).
func kubeOptions(cfg *configT) kube.Options { return kube.OptionsFrom(&cfg.ClusterConfig) }

// kubeSource builds the Kubernetes source of cfg.
func kubeSource(cfg *configT, reg prometheus.Registerer, log *slog.Logger, standby bool) (*kube.Source, error) {
	opts := kubeOptions(cfg)
	opts.Logger = log
	opts.Registerer = reg
	opts.Standby = standby
	return kube.NewSource(opts)
}

// oneSnapshot returns one complete snapshot for `ravel plan`, or nil without a kubernetes
// section. It gives up after a minute rather than printing a plan from a partial view.
func oneSnapshot(ctx context.Context, cfg *configT) (*kube.Snapshot, error) {
	if cfg.Kubernetes == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	opts := kubeOptions(cfg)
	opts.Logger = slog.New(slog.DiscardHandler)
	return kube.OneSnapshot(ctx, opts)
}
