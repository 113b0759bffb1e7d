//go:build !wired

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// Until the collector and sink packages land, the command loads and checks
// its configuration but cannot run; bridge.go holds the wiring.
var errNotWired = errors.New("collector and sink are not wired in this build")

func runBridge(context.Context, *config.Config, *slog.Logger) error { return errNotWired }

func runOnce(context.Context, *config.Config, io.Writer, *slog.Logger) error { return errNotWired }
