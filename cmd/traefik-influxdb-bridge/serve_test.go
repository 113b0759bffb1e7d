package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
)

func emptyBacklog() sink.QueueStats { return sink.QueueStats{MaxBytes: 1024} }

func TestOperationalEndpoints(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		ready      error
		backlog    func() sink.QueueStats
		wantStatus int
		wantBody   []string
	}{
		{name: "healthz", path: "/healthz", ready: errors.New("influxdb unreachable"), wantStatus: 200, wantBody: []string{"ok"}},
		{name: "readyz ready", path: "/readyz", wantStatus: 200, wantBody: []string{"ready\nbuffer: empty (cap 1024 bytes)\n"}},
		{name: "readyz not ready", path: "/readyz", ready: errors.New("buffer above its high-water mark"), wantStatus: 503, wantBody: []string{"not ready: buffer above its high-water mark"}},
		{
			// An outage: the second line says how much waits and since when.
			name: "readyz backlog", path: "/readyz", ready: errors.New("influxdb unavailable"),
			backlog: func() sink.QueueStats {
				return sink.QueueStats{Bytes: 512, Records: 3, Lines: 40, MaxBytes: 1024, Oldest: time.Now().Add(-90 * time.Second)}
			},
			wantStatus: 503,
			wantBody:   []string{"not ready: influxdb unavailable\nbuffer: 512 bytes in 3 records (40 lines) waiting, 50% of the cap; oldest queued 1m30s ago\n"},
		},
		{
			name: "metrics", path: "/metrics", wantStatus: 200,
			wantBody: []string{
				"# TYPE traefik_influxdb_bridge_build_info gauge",
				`traefik_influxdb_bridge_build_info{goversion="go`,
				"# TYPE go_goroutines gauge",
				"# TYPE process_cpu_seconds_total counter",
			},
		},
		{name: "unknown path", path: "/nope", wantStatus: 404},
	}
	for _, tt := range tests {
		if tt.backlog == nil {
			tt.backlog = emptyBacklog
		}
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(newMux(newRegistry(), func() error { return tt.ready }, tt.backlog))
			defer srv.Close()
			resp, err := http.Get(srv.URL + tt.path)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, tt.wantStatus, resp.StatusCode, "body: %s", body)
			for _, want := range tt.wantBody {
				require.Contains(t, string(body), want)
			}
		})
	}
}

func TestMetricsEndpointRejectsPost(t *testing.T) {
	srv := httptest.NewServer(newMux(newRegistry(), func() error { return nil }, emptyBacklog))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/metrics", "text/plain", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// A scraper that asks for gzip, as Prometheus does, must get the page plain:
// compressing a page of a few KiB costs a compress/flate writer of about
// 1.2 MB (promhttp's did), which a sidecar's heap would carry.
func TestMetricsEndpointUncompressed(t *testing.T) {
	srv := httptest.NewServer(newMux(newRegistry(), func() error { return nil }, emptyBacklog))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gunzip
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Content-Encoding"))
	require.Contains(t, string(body), "# TYPE traefik_influxdb_bridge_build_info gauge")
}

// BenchmarkMetricsEndpoint is one Prometheus scrape of /metrics, gzip asked,
// with the garbage collections of the seconds between two scrapes before it
// (two cycles empty the sync.Pools that would hide a per-scrape allocation).
func BenchmarkMetricsEndpoint(b *testing.B) {
	mux := newMux(newRegistry(), func() error { return nil }, emptyBacklog)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.GC()
		b.StartTimer()
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
