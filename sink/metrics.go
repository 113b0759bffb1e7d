package sink

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "traefik_influxdb_bridge"

// metrics are the sink's self-metrics. Queue figures and drop counts are read
// at scrape time by a collector, so queues need not know client_golang.
type metrics struct {
	writes        *prometheus.CounterVec
	duration      prometheus.Histogram
	retries       prometheus.Counter
	written       prometheus.Counter
	up            prometheus.Gauge
	queueAndDrops *queueCollector
}

func newMetrics(reg prometheus.Registerer, q Queue) (*metrics, error) {
	m := &metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "writes_total",
			Help: "Write attempts to InfluxDB by answer: 2xx, 4xx, 5xx, or error (no answer).",
		}, []string{"status_class"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "write_duration_seconds",
			Help:    "Duration of one write attempt to InfluxDB.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "retries_total",
			Help: "Write attempts that repeated a failed one.",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "points_written_total",
			Help: "Points InfluxDB accepted.",
		}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "influxdb_up",
			Help: "1 if the last write or ping reached a working InfluxDB, else 0.",
		}),
		queueAndDrops: &queueCollector{q: q, dropped: map[string]int64{}},
	}
	for _, c := range []string{"2xx", "4xx", "5xx", "error"} {
		m.writes.WithLabelValues(c)
	}
	for _, c := range []prometheus.Collector{m.writes, m.duration, m.retries, m.written, m.up, m.queueAndDrops} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(class string, d time.Duration) {
	m.writes.WithLabelValues(class).Inc()
	m.duration.Observe(d.Seconds())
}

var (
	descDropped = prometheus.NewDesc(namespace+"_points_dropped_total",
		"Points that will never be written, by reason: partial_write and rejected (InfluxDB refused them), too_large (a single line over max-body-size), buffer_full (evicted), corrupt (unreadable in the disk buffer).",
		[]string{"reason"}, nil)
	descBufBytes = prometheus.NewDesc(namespace+"_buffer_bytes",
		"Bytes of line protocol waiting to be written, the batch in flight included.", nil, nil)
	descBufMax = prometheus.NewDesc(namespace+"_buffer_max_bytes",
		"Cap of the buffer in bytes.", nil, nil)
	descBufBatches = prometheus.NewDesc(namespace+"_buffer_batches",
		"Records (one per scrape) waiting to be written.", nil, nil)
	descBufLines = prometheus.NewDesc(namespace+"_buffer_lines",
		"Lines waiting to be written.", nil, nil)
	descBufAge = prometheus.NewDesc(namespace+"_buffer_oldest_age_seconds",
		"Age of the oldest waiting record; 0 when the buffer is empty.", nil, nil)
)

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

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDropped, descBufBytes, descBufMax, descBufBatches, descBufLines, descBufAge} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.q.Stats()
	ch <- prometheus.MustNewConstMetric(descBufBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descBufMax, prometheus.GaugeValue, float64(st.MaxBytes))
	ch <- prometheus.MustNewConstMetric(descBufBatches, prometheus.GaugeValue, float64(st.Records))
	ch <- prometheus.MustNewConstMetric(descBufLines, prometheus.GaugeValue, float64(st.Lines))
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(0, time.Since(st.Oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(descBufAge, prometheus.GaugeValue, age)

	all := c.droppedTotals(st.DroppedLines)
	for reason, n := range all {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n), reason)
	}
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
