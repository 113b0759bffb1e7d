package collector

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

const metricPrefix = "traefik_influxdb_bridge_"

// metrics are the collector's self-metrics; every one has a target label,
// the scraped URL without credentials.
type metrics struct {
	scrapes      *prometheus.CounterVec // target, result
	duration     *prometheus.HistogramVec
	samples      *prometheus.CounterVec
	pages        *prometheus.CounterVec // target, format
	points       *prometheus.CounterVec
	skipped      *prometheus.CounterVec // target, reason
	emptyLabels  *prometheus.CounterVec
	lastSuccess  *prometheus.GaugeVec
	appendErrors *prometheus.CounterVec
	stateErrors  *prometheus.CounterVec
	series       *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		scrapes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "scrapes_total",
			Help: "Scrapes of Traefik by result: success, or the kind of failure.",
		}, []string{"target", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricPrefix + "scrape_duration_seconds",
			Help:    "Time to fetch, parse and convert one scrape, including a wait for its turn on the disk buffer when several targets are scraped at once.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"target"}),
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "samples_total",
			Help: "Samples read from Traefik's pages.",
		}, []string{"target"}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "pages_total",
			Help: "Pages read from Traefik, by the format it answered in (traefik.format): protobuf or text.",
		}, []string{"target", "format"}),
		points: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "points_total",
			Help: "Line-protocol points produced from the scrapes and handed to the buffer.",
		}, []string{"target"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "samples_skipped_total",
			Help: "Samples that could not be written, by reason: nan, inf, invalid_label, series_limit (a new series over traefik.max_series).",
		}, []string{"target", "reason"}),
		emptyLabels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "empty_labels_total",
			Help: "Labels with an empty value left out of the points; the samples are written as if the label were absent, as Prometheus reads them.",
		}, []string{"target"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "last_scrape_success_timestamp_seconds",
			Help: "When the target was last scraped and converted without error (unix seconds).",
		}, []string{"target"}),
		appendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "append_errors_total",
			Help: "Scrapes whose points the buffer refused.",
		}, []string{"target"}),
		stateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "state_load_errors_total",
			Help: "Saved counter states that could not be read or decoded at start; the target started with a baseline instead.",
		}, []string{"target"}),
		series: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "state_series",
			Help: "Series whose last values the traefik schema remembers for the target, to write increases; at most traefik.max_series.",
		}, []string{"target"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.scrapes, m.duration, m.samples, m.pages, m.points, m.skipped, m.emptyLabels, m.lastSuccess, m.appendErrors, m.stateErrors, m.series} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("self-metrics: %w (one collector per registry)", err)
			}
			return nil, fmt.Errorf("self-metrics: %w", err)
		}
	}
	return m, nil
}

// targetMetrics are one target's children, resolved once.
type targetMetrics struct {
	success      prometheus.Counter
	duration     prometheus.Observer
	samples      prometheus.Counter
	pages        [2]prometheus.Counter // by Format
	points       prometheus.Counter
	skipped      [NumSkipReasons]prometheus.Counter
	emptyLabels  prometheus.Counter
	lastSuccess  prometheus.Gauge
	appendErrors prometheus.Counter
	series       prometheus.Gauge
}

func (m *metrics) forTarget(label string) targetMetrics {
	tm := targetMetrics{
		success:  m.scrapes.WithLabelValues(label, "success"),
		duration: m.duration.WithLabelValues(label),
		samples:  m.samples.WithLabelValues(label),
		pages: [2]prometheus.Counter{
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
func (m *metrics) forget(label string) {
	l := prometheus.Labels{"target": label}
	m.scrapes.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.samples.DeletePartialMatch(l)
	m.pages.DeletePartialMatch(l)
	m.points.DeletePartialMatch(l)
	m.skipped.DeletePartialMatch(l)
	m.emptyLabels.DeletePartialMatch(l)
	m.lastSuccess.DeletePartialMatch(l)
	m.appendErrors.DeletePartialMatch(l)
	m.stateErrors.DeletePartialMatch(l)
	m.series.DeletePartialMatch(l)
}
