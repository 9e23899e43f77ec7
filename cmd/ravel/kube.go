package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ravel-lb/ravel/kube"
)

// startKube starts the Kubernetes source when the config has a kubernetes section; nil
// channel otherwise.
func startKube(ctx context.Context, cfg *configT, reg prometheus.Registerer, log *slog.Logger) (<-chan *kube.Snapshot, error) {
	if cfg.Kubernetes == nil {
		return nil, nil
	}
	return nil, errors.New("the kubernetes source is not wired yet")
}

// oneSnapshot returns one complete snapshot for `ravel plan`, or nil without a kubernetes
// section.
func oneSnapshot(ctx context.Context, cfg *configT) (*kube.Snapshot, error) {
	if cfg.Kubernetes == nil {
		return nil, nil
	}
	return nil, errors.New("the kubernetes source is not wired yet")
}
