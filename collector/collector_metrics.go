package collector

import (
	"fmt"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
)

const metricPrefix = "traefik_influxdb_bridge_"

// selfMetrics are the collector's self-metrics; every one has a target label,
// the scraped URL without credentials.
type selfMetrics struct {
	scrapes      metrics.CounterVec // target, result
	duration     metrics.HistogramVec
	samples      metrics.CounterVec
	pages        metrics.CounterVec // target, format
	points       metrics.CounterVec
	skipped      metrics.CounterVec // target, reason
	emptyLabels  metrics.CounterVec
	lastSuccess  metrics.GaugeVec
	appendErrors metrics.CounterVec
	stateErrors  metrics.CounterVec
	series       metrics.GaugeVec
}

func newMetrics(reg *metrics.Registry) (*selfMetrics, error) {
	m := &selfMetrics{
		scrapes: metrics.NewCounterVec(metricPrefix+"scrapes_total",
			"Scrapes of Traefik by result: success, or the kind of failure.",
			"target", "result"),
		duration: metrics.NewHistogramVec(metricPrefix+"scrape_duration_seconds",
			"Time to fetch, parse and convert one scrape, including a wait for its turn on the disk buffer when several targets are scraped at once.",
			[]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}, "target"),
		samples: metrics.NewCounterVec(metricPrefix+"samples_total",
			"Samples read from Traefik's pages.",
			"target"),
		pages: metrics.NewCounterVec(metricPrefix+"pages_total",
			"Pages read from Traefik, by the format it answered in (traefik.format): protobuf or text.",
			"target", "format"),
		points: metrics.NewCounterVec(metricPrefix+"points_total",
			"Line-protocol points produced from the scrapes and handed to the buffer.",
			"target"),
		skipped: metrics.NewCounterVec(metricPrefix+"samples_skipped_total",
			"Samples that could not be written, by reason: nan, inf, invalid_label, series_limit (a new series over traefik.max_series).",
			"target", "reason"),
		emptyLabels: metrics.NewCounterVec(metricPrefix+"empty_labels_total",
			"Labels with an empty value left out of the points; the samples are written as if the label were absent, as Prometheus reads them.",
			"target"),
		lastSuccess: metrics.NewGaugeVec(metricPrefix+"last_scrape_success_timestamp_seconds",
			"When the target was last scraped and converted without error (unix seconds).",
			"target"),
		appendErrors: metrics.NewCounterVec(metricPrefix+"append_errors_total",
			"Scrapes whose points the buffer refused.",
			"target"),
		stateErrors: metrics.NewCounterVec(metricPrefix+"state_load_errors_total",
			"Saved counter states that could not be read or decoded at start; the target started with a baseline instead.",
			"target"),
		series: metrics.NewGaugeVec(metricPrefix+"state_series",
			"Series whose last values the traefik schema remembers for the target, to write increases; at most traefik.max_series.",
			"target"),
	}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.scrapes, m.duration, m.samples, m.pages, m.points, m.skipped, m.emptyLabels, m.lastSuccess, m.appendErrors, m.stateErrors, m.series); err != nil {
		return nil, fmt.Errorf("self-metrics: %w (one collector per registry)", err)
	}
	return m, nil
}

// targetMetrics are one target's children, resolved once.
type targetMetrics struct {
	success      *metrics.Counter
	duration     *metrics.Histogram
	samples      *metrics.Counter
	pages        [2]*metrics.Counter // by Format
	points       *metrics.Counter
	skipped      [NumSkipReasons]*metrics.Counter
	emptyLabels  *metrics.Counter
	lastSuccess  *metrics.Gauge
	appendErrors *metrics.Counter
	series       *metrics.Gauge
}

func (m *selfMetrics) forTarget(label string) targetMetrics {
	tm := targetMetrics{
		success:  m.scrapes.WithLabelValues(label, "success"),
		duration: m.duration.WithLabelValues(label),
		samples:  m.samples.WithLabelValues(label),
		pages: [2]*metrics.Counter{
			FormatText:     m.pages.WithLabelValues(label, FormatText.String()),
			FormatProtobuf: m.pages.WithLabelValues(label, FormatProtobuf.String()),
		},
		points:       m.points.WithLabelValues(label),
		emptyLabels:  m.emptyLabels.WithLabelValues(label),
		lastSuccess:  m.lastSuccess.WithLabelValues(label),
		appendErrors: m.appendErrors.WithLabelValues(label),
		series:       m.series.WithLabelValues(label),
	}
	for r := SkipReason(0); r < NumSkipReasons; r++ {
		tm.skipped[r] = m.skipped.WithLabelValues(label, r.String())
	}
	return tm
}

// forget removes a target that is gone (an address a dns+ URL no longer
// resolves to), so that churning pods do not grow /metrics for ever.
func (m *selfMetrics) forget(label string) {
	m.scrapes.DeleteLabel("target", label)
	m.duration.DeleteLabel("target", label)
	m.samples.DeleteLabel("target", label)
	m.pages.DeleteLabel("target", label)
	m.points.DeleteLabel("target", label)
	m.skipped.DeleteLabel("target", label)
	m.emptyLabels.DeleteLabel("target", label)
	m.lastSuccess.DeleteLabel("target", label)
	m.appendErrors.DeleteLabel("target", label)
	m.stateErrors.DeleteLabel("target", label)
	m.series.DeleteLabel("target", label)
}
