package sink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
)

// testConfig is the default config aimed at url, with short backoffs.
func testConfig(url string) *config.Config {
	cfg := config.Default()
	cfg.InfluxDB.URL = url
	cfg.InfluxDB.Database = "tib"
	cfg.Retry.MinBackoff = 10 * time.Millisecond
	cfg.Retry.MaxBackoff = 50 * time.Millisecond
	return &cfg
}

type harness struct {
	sink *Sink
	q    *MemoryQueue
	reg  *metrics.Registry
	logs *logRecorder
}

func newHarness(t testing.TB, cfg *config.Config) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	h := &harness{q: NewMemoryQueue(int64(cfg.Buffer.MaxBytes)), reg: metrics.NewRegistry(), logs: &logRecorder{}}
	s, err := New(cfg, h.q, h.reg, slog.New(h.logs))
	require.NoError(t, err)
	h.sink = s
	return h
}

// appendLines queues lines (newline-terminated) as one record.
func (h *harness) appendLines(t testing.TB, lines ...string) {
	t.Helper()
	require.NoError(t, h.q.Append([]byte(strings.Join(lines, "\n")+"\n"), len(lines)))
}

// metric returns the value of the series of family name with exactly the
// given label pairs; 0 when absent.
func (h *harness) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	for _, f := range h.reg.Gather() {
		if f.Name != name {
			continue
		}
	metrics:
		for _, m := range f.Metrics {
			got := map[string]string{}
			for _, lp := range m.Labels {
				got[lp.Name] = lp.Value
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			if f.Kind == metrics.KindHistogram {
				return float64(m.Count)
			}
			return m.Value
		}
	}
	return 0
}

// logRecorder is a slog.Handler that keeps every record as text.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs string // "k=v k=v", values formatted with %v
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, "%s=%v ", a.Key, a.Value.Resolve().Any())
		return true
	})
	l.mu.Lock()
	l.records = append(l.records, logRecord{Level: r.Level, Msg: r.Message, Attrs: b.String()})
	l.mu.Unlock()
	return nil
}

// find returns the records at level whose message contains substr.
func (l *logRecorder) find(level slog.Level, substr string) []logRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logRecord
	for _, r := range l.records {
		if r.Level == level && strings.Contains(r.Msg, substr) {
			out = append(out, r)
		}
	}
	return out
}

// all returns every record as one text, for leak checks and failure output.
func (l *logRecorder) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.records {
		fmt.Fprintf(&b, "%s %s %s\n", r.Level, r.Msg, r.Attrs)
	}
	return b.String()
}
