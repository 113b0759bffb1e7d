package main

import (
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
)

// newRegistry is the bridge's own registry (never a global one): the
// collector and sink register their metrics on it, and /metrics and the
// self-metrics writer read it.
func newRegistry() *metrics.Registry {
	reg := metrics.NewRegistry()
	reg.MustRegister(
		metrics.NewRuntimeCollector(),
		metrics.NewGaugeFunc("traefik_influxdb_bridge_build_info", "Always 1; the labels say which build is running.",
			func() float64 { return 1 },
			metrics.Label{Name: "version", Value: version}, metrics.Label{Name: "goversion", Value: runtime.Version()}),
	)
	return reg
}

// newMux serves the operational endpoints:
//
//	/metrics  the bridge's registry in Prometheus's text format
//	/healthz  200 while the process runs (liveness)
//	/readyz   200 when ready() is nil, else 503 and the reason (readiness);
//	          either way a second line shows the backlog and its age
func newMux(reg *metrics.Registry, ready func() error, backlog func() sink.QueueStats) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg)
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
