package sink

import (
	"sync"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
)

const namespace = "traefik_influxdb_bridge"

// selfMetrics are the sink's self-metrics. Queue figures and drop counts are
// read when the registry is, by a collector, so queues need not know metrics.
type selfMetrics struct {
	writes        metrics.CounterVec
	duration      *metrics.Histogram
	retries       *metrics.Counter
	written       *metrics.Counter
	up            *metrics.Gauge
	queueAndDrops *queueCollector
}

func newMetrics(reg *metrics.Registry, q Queue) (*selfMetrics, error) {
	m := &selfMetrics{
		writes: metrics.NewCounterVec(namespace+"_writes_total",
			"Write attempts to InfluxDB by answer: 2xx, 4xx, 5xx, or error (no answer).", "status_class"),
		duration: metrics.NewHistogram(namespace+"_write_duration_seconds",
			"Duration of one write attempt to InfluxDB.", []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}),
		retries:       metrics.NewCounter(namespace+"_retries_total", "Write attempts that repeated a failed one."),
		written:       metrics.NewCounter(namespace+"_points_written_total", "Points InfluxDB accepted."),
		up:            metrics.NewGauge(namespace+"_influxdb_up", "1 if the last write or ping reached a working InfluxDB, else 0."),
		queueAndDrops: &queueCollector{q: q, dropped: map[string]int64{}},
	}
	for _, c := range []string{"2xx", "4xx", "5xx", "error"} {
		m.writes.WithLabelValues(c)
	}
	if err := reg.Register(m.writes, m.duration, m.retries, m.written, m.up, m.queueAndDrops); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *selfMetrics) observe(class string, d time.Duration) {
	m.writes.WithLabelValues(class).Inc()
	m.duration.Observe(d.Seconds())
}

const helpDropped = "Points that will never be written, by reason: partial_write and rejected (InfluxDB refused them), too_large (a single line over max-body-size), buffer_full (evicted), corrupt (unreadable in the disk buffer)."

// queueCollector exports Queue.Stats and merges the queue's drop counts with
// the sink's own into one points_dropped_total family.
type queueCollector struct {
	q Queue

	mu      sync.Mutex
	dropped map[string]int64 // drops the sink decided (partial_write, rejected, too_large)
}

func (c *queueCollector) drop(reason string, n int) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.dropped[reason] += int64(n)
	c.mu.Unlock()
}

func (c *queueCollector) Names() []string {
	return []string{
		namespace + "_points_dropped_total", namespace + "_buffer_bytes", namespace + "_buffer_max_bytes",
		namespace + "_buffer_batches", namespace + "_buffer_lines", namespace + "_buffer_oldest_age_seconds",
	}
}

func (c *queueCollector) Collect(emit func(metrics.Family)) {
	st := c.q.Stats()
	gauge := func(name, help string, v float64) {
		emit(metrics.Family{Name: namespace + name, Help: help, Kind: metrics.KindGauge, Metrics: []metrics.Metric{{Value: v}}})
	}
	gauge("_buffer_bytes", "Bytes of line protocol waiting to be written, the batch in flight included.", float64(st.Bytes))
	gauge("_buffer_max_bytes", "Cap of the buffer in bytes.", float64(st.MaxBytes))
	gauge("_buffer_batches", "Records (one per scrape) waiting to be written.", float64(st.Records))
	gauge("_buffer_lines", "Lines waiting to be written.", float64(st.Lines))
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(0, time.Since(st.Oldest).Seconds())
	}
	gauge("_buffer_oldest_age_seconds", "Age of the oldest waiting record; 0 when the buffer is empty.", age)

	dropped := metrics.Family{Name: namespace + "_points_dropped_total", Help: helpDropped, Kind: metrics.KindCounter}
	for reason, n := range c.droppedTotals(st.DroppedLines) {
		dropped.Metrics = append(dropped.Metrics, metrics.Metric{Labels: []metrics.Label{{Name: "reason", Value: reason}}, Value: float64(n)})
	}
	emit(dropped)
}

// droppedTotals merges the queue's counts with the sink's, every known reason
// present (at 0) so a rate() over it starts from the first scrape.
func (c *queueCollector) droppedTotals(fromQueue map[string]int64) map[string]int64 {
	all := map[string]int64{
		ReasonBufferFull: 0, ReasonCorrupt: 0, ReasonPartialWrite: 0, ReasonRejected: 0, ReasonTooLarge: 0,
	}
	for r, n := range fromQueue {
		all[r] += n
	}
	c.mu.Lock()
	for r, n := range c.dropped {
		all[r] += n
	}
	c.mu.Unlock()
	return all
}
