package main

import (
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
)

// newRegistry is the bridge's own registry (never the global one): the
// collector and sink register their metrics on it, and /metrics and the
// self-metrics writer read it.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "traefik_influxdb_bridge_build_info",
			Help:        "Always 1; the labels say which build is running.",
			ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
	)
	return reg
}

// newMux serves the operational endpoints:
//
//	/metrics  the bridge's registry in Prometheus format
//	/healthz  200 while the process runs (liveness)
//	/readyz   200 when ready() is nil, else 503 and the reason (readiness);
//	          either way a second line shows the backlog and its age
func newMux(reg *prometheus.Registry, ready func() error, backlog func() sink.QueueStats) *http.ServeMux {
	mux := http.NewServeMux()
	// The page is a few KiB: gzipping it for a scraper that asks (Prometheus
	// always does) saved nothing worth the compress/flate writer promhttp
	// allocated for it, about 0.8 MB a scrape once its pool was emptied.
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, DisableCompression: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
		} else {
			fmt.Fprintln(w, "ready")
		}
		fmt.Fprintln(w, describeBacklog(backlog(), time.Now()))
	})
	return mux
}

// describeBacklog says what waits to be written, for /readyz: a probe that
// fails shows in `kubectl describe` with this body, so the operator sees at
// once whether data is piling up and since when.
func describeBacklog(st sink.QueueStats, now time.Time) string {
	if st.Records == 0 {
		return fmt.Sprintf("buffer: empty (cap %d bytes)", st.MaxBytes)
	}
	age := "unknown"
	if !st.Oldest.IsZero() {
		age = now.Sub(st.Oldest).Round(time.Second).String()
	}
	return fmt.Sprintf("buffer: %d bytes in %d records (%d lines) waiting, %.0f%% of the cap; oldest queued %s ago",
		st.Bytes, st.Records, st.Lines, 100*float64(st.Bytes)/float64(max(st.MaxBytes, 1)), age)
}
