package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

func runRealserver(ctx context.Context, cfg *configT, node nodeT, reg *prometheus.Registry, log *slog.Logger) error {
	return &exitError{exitUsage, errors.New("the realserver role is not wired yet")}
}
