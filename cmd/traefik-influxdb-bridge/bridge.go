package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/collector"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink/diskqueue"
)

// runBridge runs until ctx is done, then stops scraping, gives the buffer
// shutdown_grace to reach InfluxDB, and returns nil. It returns an error only
// when the bridge cannot start or a part fails on its own.
func runBridge(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	reg := newRegistry()
	q, err := openQueue(cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := q.Close(); err != nil {
			log.Error("closing the buffer", "err", err)
		}
	}()
	sk, col, err := newParts(cfg, q, reg, log)
	if err != nil {
		return err
	}

	// Listen before anything runs so a taken port stops the start, not a
	// running bridge.
	var srv *http.Server
	var ln net.Listener
	if cfg.Listen != "" {
		ln, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		srv = &http.Server{
			Handler:           newMux(reg, sk.Ready, q.Stats),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		log.Info("serving /metrics, /healthz, /readyz", "addr", ln.Addr().String())
	}

	// Everything that only starting needs has run.
	releaseStartupMemory()
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return quiet(gctx, col.Run(gctx)) })
	g.Go(func() error { return quiet(gctx, sk.Run(gctx)) })
	// Ready needs an answer from InfluxDB even while there is nothing to
	// write (Traefik down, first scrape a baseline).
	g.Go(func() error { pingEvery(gctx, sk, cfg.Traefik.Interval); return nil })
	if cfg.SelfMetrics.Write {
		sm := newSelfMetrics(cfg, reg, q, hostname(), log)
		g.Go(func() error { return sm.Run(gctx) })
	}
	if srv != nil {
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				cancel(fmt.Errorf("http server: %w", err))
			}
		}()
	}
	runErr := g.Wait()
	if runErr == nil {
		runErr = context.Cause(runCtx)
		if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
			runErr = nil // the signal
		}
	}
	log.Info("stopping: scraping stopped, flushing the buffer", "grace", cfg.ShutdownGrace, "lines", q.Stats().Lines)
	// The last self-metrics snapshot waits for an append that will not come.
	if l, ok := q.(sink.LaterAppender); ok {
		if err := l.Release(); err != nil {
			log.Warn("the last self-metrics snapshot stays in the buffer for the next start", "err", err)
		}
	}

	// The final flush gets its own deadline: ctx is already cancelled.
	flushCtx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGrace)
	defer cancelFlush()
	if err := sk.Flush(flushCtx); err != nil {
		left := q.Stats().Lines
		if cfg.Buffer.Dir != "" {
			log.Warn("buffer not flushed within shutdown_grace; it stays on disk for the next start", "err", err, "lines", left)
		} else {
			log.Error("buffer not flushed within shutdown_grace; these lines are lost (set buffer.dir to keep them)", "err", err, "lines", left)
		}
	} else {
		log.Info("buffer flushed")
	}
	if srv != nil {
		shutCtx, cancelShut := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancelShut()
		_ = srv.Shutdown(shutCtx)
	}
	return runErr
}

// newParts builds the sink and the collector. They read the files the
// configuration names (TLS, passwords) and fail on them without touching the
// network, so their errors are configuration errors (exit 2).
func newParts(cfg *config.Config, q sink.Queue, reg *metrics.Registry, log *slog.Logger) (*sink.Sink, *collector.Collector, error) {
	sk, err := sink.New(cfg, q, reg, log)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	col, err := collector.New(cfg, q, reg, log)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	return sk, col, nil
}

// hostname is the host tag's value, as the collector writes it: $HOSTNAME
// when set (a Kubernetes pod's name), else the kernel's host name.
func hostname() string {
	if h := os.Getenv("HOSTNAME"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// quiet turns the cancellation a part returns when asked to stop into nil, so
// only real failures reach the errgroup.
func quiet(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// pingEvery asks InfluxDB's /ping now and every interval until ctx is done,
// unless a write was answered in the last interval; the sink records the
// answer for Ready and logs a change.
func pingEvery(ctx context.Context, sk *sink.Sink, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_ = sk.PingUnlessWritten(ctx, interval)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openQueue returns the durable queue when buffer.dir is set, else memory.
func openQueue(cfg *config.Config, log *slog.Logger) (sink.Queue, error) {
	if cfg.Buffer.Dir == "" {
		return sink.NewMemoryQueue(int64(cfg.Buffer.MaxBytes)), nil
	}
	// The collector hands the queue a whole scrape with its counter state
	// in one append; the queue cuts it into records that each fit one
	// write, and keeps or loses them together.
	q, err := diskqueue.Open(cfg.Buffer.Dir, diskqueue.Options{
		MaxBytes:       int64(cfg.Buffer.MaxBytes),
		Fsync:          cfg.Buffer.Fsync,
		FsyncInterval:  cfg.Buffer.FsyncInterval,
		RecordMaxLines: cfg.Batch.MaxLines,
		RecordMaxBytes: int(cfg.Batch.MaxBytes),
	}, log)
	if err != nil {
		return nil, fmt.Errorf("buffer.dir: %w", err)
	}
	return q, nil
}

// runOnce prints what the next write would carry. The collector decides how
// many scrapes that takes (two, one interval apart, for the delta schema).
func runOnce(ctx context.Context, cfg *config.Config, w io.Writer, log *slog.Logger) error {
	col, err := collector.New(cfg, discard{}, newRegistry(), log)
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	return col.Once(ctx, w)
}

// discard is the appender of --once: Once writes to stdout itself.
type discard struct{}

func (discard) Append([]byte, int) error { return nil }
