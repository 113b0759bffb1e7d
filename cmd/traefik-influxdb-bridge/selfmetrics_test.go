package main

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
)

func selfMetricsRegistry() *metrics.Registry {
	reg := metrics.NewRegistry()
	g := metrics.NewGauge("go_test_thing", "h")
	g.Set(7)
	q := metrics.NewGauge("traefik_influxdb_bridge_queue_bytes", "h")
	q.Set(1024)
	nan := metrics.NewGauge("traefik_influxdb_bridge_nan", "h")
	nan.Set(math.NaN())
	sc := metrics.NewCounterVec("traefik_influxdb_bridge_scrapes_total", "h", "target")
	sc.WithLabelValues("a").Add(3)
	sc.WithLabelValues("").Add(1)
	up := metrics.NewGaugeVec("traefik_influxdb_bridge_up", "h", "host")
	up.WithLabelValues("other").Set(1)
	h := metrics.NewHistogram("traefik_influxdb_bridge_write_seconds", "h", []float64{1})
	h.Observe(0.5)
	h.Observe(1.5)
	reg.MustRegister(g, q, nan, sc, up, h)
	return reg
}

func selfMetricsConfig() *config.Config {
	cfg := config.Default()
	cfg.SelfMetrics.Measurement = "tib"
	cfg.Tags = map[string]string{"region": "eu"}
	return &cfg
}

func TestSelfMetricsEncode(t *testing.T) {
	// Each line checked by hand against the registry above: families in name
	// order, the namespace replaced by the prefix, empty label values left
	// out, a label wins over host_tag, NaN left out, time truncated to s.
	want := "tib_go_test_thing,host=h1,region=eu value=7 1700000000\n" +
		"tib_queue_bytes,host=h1,region=eu value=1024 1700000000\n" +
		"tib_scrapes_total,host=h1,region=eu value=1 1700000000\n" +
		"tib_scrapes_total,host=h1,region=eu,target=a value=3 1700000000\n" +
		"tib_up,host=other,region=eu value=1 1700000000\n" +
		"tib_write_seconds,host=h1,region=eu count=2,sum=2 1700000000\n"
	tests := []struct {
		name      string
		precision string
		want      string
	}{
		{name: "seconds", precision: "s", want: want},
		{name: "milliseconds", precision: "ms", want: strings.ReplaceAll(want, " 1700000000\n", " 1700000000500\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := selfMetricsConfig()
			cfg.InfluxDB.Precision = tt.precision
			sm := newSelfMetrics(cfg, selfMetricsRegistry(), nil, "h1", slog.New(slog.DiscardHandler))
			lines, n, err := sm.encode(time.Unix(1700000000, 500_600_000))
			require.NoError(t, err)
			require.Equal(t, tt.want, string(lines))
			require.Equal(t, 6, n)
		})
	}
}

// recorder is an appender that keeps what it is given.
type recorder struct {
	mu    sync.Mutex
	lines [][]byte
	n     []int
}

func (r *recorder) Append(lines []byte, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, append([]byte(nil), lines...))
	r.n = append(r.n, n)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.n)
}

func TestSelfMetricsRunAppendsEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := selfMetricsConfig()
		cfg.Traefik.Interval = 10 * time.Second
		rec := &recorder{}
		sm := newSelfMetrics(cfg, selfMetricsRegistry(), rec, "h1", slog.New(slog.NewTextHandler(io.Discard, nil)))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- sm.Run(ctx) }()

		synctest.Wait()
		require.Equal(t, 0, rec.count(), "nothing before the first interval")
		time.Sleep(10 * time.Second) // virtual time inside the bubble
		synctest.Wait()
		require.Equal(t, 1, rec.count())
		time.Sleep(25 * time.Second)
		synctest.Wait()
		require.Equal(t, 3, rec.count())
		require.Equal(t, []int{6, 6, 6}, rec.n)
		require.Contains(t, string(rec.lines[2]), "tib_queue_bytes,host=h1,region=eu value=1024 ")

		cancel()
		require.NoError(t, <-done)
	})
}

// laterRecorder is a queue that can hold a record back (sink.LaterAppender).
type laterRecorder struct {
	recorder
	later int
}

func (r *laterRecorder) AppendLater(lines []byte, n int) error {
	r.mu.Lock()
	r.later++
	r.mu.Unlock()
	return r.Append(lines, n)
}

// The snapshot rides with the scrape of the same tick where the queue can
// hold it back: AppendLater, never Append.
func TestSelfMetricsAppendLater(t *testing.T) {
	rec := &laterRecorder{}
	sm := newSelfMetrics(selfMetricsConfig(), selfMetricsRegistry(), rec, "h1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, sm.appendOnce(time.Unix(1700000000, 0)))
	require.NoError(t, sm.appendOnce(time.Unix(1700000010, 0)))
	require.Equal(t, 2, rec.later)
	require.Equal(t, 2, rec.count())
}

func (r *laterRecorder) Release() error { return nil }

var _ sink.LaterAppender = (*laterRecorder)(nil)
