package main

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
)

// selfNamespace is how the bridge's own metric names start; the self-metrics
// writer replaces it with self_metrics.measurement_prefix.
const selfNamespace = "traefik_influxdb_bridge_"

// appender is what the self-metrics writer appends to (a sink.Queue).
type appender interface {
	Append(lines []byte, n int) error
}

// selfMetrics writes the bridge's own registry into InfluxDB through the same
// queue as the Traefik points, in the spirit of Telegraf's internal input:
//
//   - measurement: the family name with its "traefik_influxdb_bridge_" start
//     (if any) replaced by "<prefix>_", so go_goroutines becomes
//     traefik_influxdb_bridge_go_goroutines;
//   - tags: the metric's labels, then host_tag and tags from the configuration
//     for names the labels do not use;
//   - fields, all floats and cumulative as /metrics shows them: counter, gauge
//     and untyped -> value; histogram and summary -> count and sum.
//
// NaN and infinite values cannot be written and are left out.
type selfMetrics struct {
	reg       gatherer
	out       appender
	prefix    string
	static    []tagKV // sorted by key
	precision lineprotocol.Precision
	interval  time.Duration
	log       *slog.Logger

	enc lineprotocol.Encoder
}

type tagKV struct{ k, v string }

// gatherer is what the writer reads: a *metrics.Registry.
type gatherer interface {
	Gather() []metrics.Family
}

func newSelfMetrics(cfg *config.Config, g gatherer, out appender, host string, log *slog.Logger) *selfMetrics {
	s := &selfMetrics{
		reg:       g,
		out:       out,
		prefix:    cfg.SelfMetrics.Measurement,
		precision: lpPrecision(cfg.InfluxDB.Precision),
		interval:  cfg.Traefik.Interval,
		log:       log,
	}
	for k, v := range cfg.Tags {
		s.static = append(s.static, tagKV{k, v})
	}
	if cfg.HostTag != "" && host != "" {
		if _, ok := cfg.Tags[cfg.HostTag]; !ok {
			s.static = append(s.static, tagKV{cfg.HostTag, host})
		}
	}
	slices.SortFunc(s.static, func(a, b tagKV) int { return strings.Compare(a.k, b.k) })
	s.enc.SetPrecision(s.precision)
	return s
}

func lpPrecision(p string) lineprotocol.Precision {
	switch config.PrecisionDuration(p) {
	case time.Nanosecond:
		return lineprotocol.Nanosecond
	case time.Microsecond:
		return lineprotocol.Microsecond
	case time.Millisecond:
		return lineprotocol.Millisecond
	}
	return lineprotocol.Second
}

// Run appends one snapshot every interval until ctx is done.
func (s *selfMetrics) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if err := s.appendOnce(now); err != nil {
				s.log.Warn("self metrics not written", "err", err)
			}
		}
	}
}

func (s *selfMetrics) appendOnce(now time.Time) error {
	lines, n, err := s.encode(now)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	// The snapshot is taken at the tick of a scrape: it goes out with the
	// scrape's lines, in its request and (on disk) its fsync.
	if l, ok := s.out.(sink.LaterAppender); ok {
		return l.AppendLater(lines, n)
	}
	return s.out.Append(lines, n)
}

// encode renders the registry as line protocol stamped now. The returned
// bytes are valid until the next call.
func (s *selfMetrics) encode(now time.Time) ([]byte, int, error) {
	fams := s.reg.Gather()
	s.enc.Reset()
	ts := now.Truncate(s.precision.Duration())
	n := 0
	var tags []tagKV
	type field struct {
		k string
		v float64
	}
	var fields []field
	for _, f := range fams {
		measurement := s.prefix + "_" + strings.TrimPrefix(f.Name, selfNamespace)
		for _, m := range f.Metrics {
			fields = fields[:0]
			switch f.Kind {
			case metrics.KindCounter, metrics.KindGauge:
				fields = append(fields, field{"value", m.Value})
			case metrics.KindHistogram, metrics.KindSummary:
				fields = append(fields, field{"count", float64(m.Count)}, field{"sum", m.Sum})
			}
			fields = slices.DeleteFunc(fields, func(f field) bool { return math.IsNaN(f.v) || math.IsInf(f.v, 0) })
			if len(fields) == 0 {
				continue
			}

			tags = tags[:0]
			for _, l := range m.Labels {
				if l.Value != "" {
					tags = append(tags, tagKV{l.Name, l.Value})
				}
			}
			for _, st := range s.static {
				if !slices.ContainsFunc(tags, func(t tagKV) bool { return t.k == st.k }) {
					tags = append(tags, st)
				}
			}
			slices.SortFunc(tags, func(a, b tagKV) int { return strings.Compare(a.k, b.k) })

			s.enc.StartLine(measurement)
			for _, t := range tags {
				s.enc.AddTag(t.k, t.v)
			}
			for _, fl := range fields {
				s.enc.AddField(fl.k, lineprotocol.MustNewValue(fl.v))
			}
			s.enc.EndLine(ts)
			if err := s.enc.Err(); err != nil {
				// One bad line must not cost the others; the encoder has
				// already dropped it.
				s.log.Debug("self metric not encodable", "metric", f.Name, "err", err)
				s.enc.ClearErr()
				continue
			}
			n++
		}
	}
	return s.enc.Bytes(), n, nil
}
