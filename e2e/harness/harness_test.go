package harness

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackendAnswersByPath(t *testing.T) {
	b := StartBackend(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name, method, path string
		want               int
		location           string
	}{
		{name: "plain", method: http.MethodGet, path: "/api/hello", want: 200},
		{name: "health", method: http.MethodGet, path: "/healthz", want: 200},
		{name: "status", method: http.MethodPost, path: "/api/status/503", want: 503},
		{name: "moved", method: http.MethodGet, path: "/api/status/301", want: 301, location: "/api/hello"},
		{name: "found", method: http.MethodGet, path: "/status/302", want: 302, location: "/api/hello"},
		{name: "slow", method: http.MethodGet, path: "/api/slow/10", want: 200},
		{name: "out of range status is ignored", method: http.MethodGet, path: "/api/status/99", want: 200},
		{name: "unknown verb", method: "PURGE", path: "/api/hello", want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, b.URL+tt.path, strings.NewReader("body"))
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tt.want, resp.StatusCode)
			require.Equal(t, tt.location, resp.Header.Get("Location"))
		})
	}
}

func TestParseTextFlattensHistograms(t *testing.T) {
	const page = `# TYPE traefik_service_requests_total counter
traefik_service_requests_total{code="200",method="GET",protocol="http",service="api-svc@file"} 6
# TYPE traefik_service_request_duration_seconds histogram
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="api-svc@file",le="0.1"} 5
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="api-svc@file",le="+Inf"} 6
traefik_service_request_duration_seconds_sum{code="200",method="GET",protocol="http",service="api-svc@file"} 0.5
traefik_service_request_duration_seconds_count{code="200",method="GET",protocol="http",service="api-svc@file"} 6
# TYPE traefik_open_connections gauge
traefik_open_connections{entrypoint="web",protocol="TCP"} 0
`
	s, err := ParseText(strings.NewReader(page))
	require.NoError(t, err)
	base := `code="200",method="GET",protocol="http",service="api-svc@file"`
	want := map[string]float64{
		`traefik_service_requests_total{` + base + `}`: 6,
		// Keys list labels sorted by name, so le comes after code.
		`traefik_service_request_duration_seconds_bucket{code="200",le="0.1",method="GET",protocol="http",service="api-svc@file"}`:  5,
		`traefik_service_request_duration_seconds_bucket{code="200",le="+Inf",method="GET",protocol="http",service="api-svc@file"}`: 6,
		`traefik_service_request_duration_seconds_sum{` + base + `}`:                                                                0.5,
		`traefik_service_request_duration_seconds_count{` + base + `}`:                                                              6,
		`traefik_open_connections{entrypoint="web",protocol="TCP"}`:                                                                 0,
	}
	got := map[string]float64{}
	for k, v := range s {
		got[k] = v.Value
	}
	require.Equal(t, want, got)
}

// TestTraefikCountsTheMix proves the topology and the driver before anything
// relies on them: one pass of Mix(1) through the example configuration must
// move Traefik's own counters by the numbers worked out by hand from
// examples/traefik/dynamic.yml and the mix.
func TestTraefikCountsTheMix(t *testing.T) {
	bin := NeedTraefik(t)
	backend := StartBackend(t)
	dead, err := FreeAddr()
	require.NoError(t, err)
	tr := StartTraefik(t, TraefikOptions{Binary: bin, BackendURL: backend.URL, DeadBackendURL: "http://" + dead})

	before, err := tr.Metrics(t.Context())
	require.NoError(t, err)
	require.Zero(t, before.Sum("traefik_entrypoint_requests_total", nil), "no request may reach an entrypoint before the mix")
	n, err := Send(t.Context(), tr, Mix(1))
	require.NoError(t, err)
	require.Equal(t, 29, n)
	require.Equal(t, 29, Count(Mix(1)))

	var after Samples
	require.Eventually(t, func() bool {
		after, err = tr.Metrics(t.Context())
		return err == nil && after.Sum("traefik_entrypoint_requests_total", nil) == 29
	}, 5*time.Second, 50*time.Millisecond)

	tests := []struct {
		name   string
		metric string
		match  map[string]string
		want   float64
	}{
		// web: 18 to /api, 3 to the shop host, 1 to /broken, 1 unrouted.
		{"web entrypoint", "traefik_entrypoint_requests_total", map[string]string{"entrypoint": "web"}, 23},
		// websecure: 5 to /secure, 1 to /api, which no TLS router serves.
		{"websecure entrypoint", "traefik_entrypoint_requests_total", map[string]string{"entrypoint": "websecure"}, 6},
		// 2 from the backend through api, 1 through shop, 1 unrouted.
		{"web 404s", "traefik_entrypoint_requests_total", map[string]string{"entrypoint": "web", "code": "404"}, 4},
		{"unrouted TLS request counts on the entrypoint", "traefik_entrypoint_requests_total", map[string]string{"entrypoint": "websecure", "code": "404"}, 1},
		{"api router", "traefik_router_requests_total", map[string]string{"router": "api@file"}, 18},
		// 4 to /api/hello and 3 slow ones.
		{"api router GET 200", "traefik_router_requests_total", map[string]string{"router": "api@file", "method": "GET", "code": "200"}, 7},
		{"unknown verb", "traefik_router_requests_total", map[string]string{"router": "api@file", "method": "EXTENSION_METHOD"}, 1},
		{"api-tls router", "traefik_router_requests_total", map[string]string{"router": "api-tls@file"}, 5},
		{"shop router", "traefik_router_requests_total", map[string]string{"router": "shop@file"}, 3},
		{"broken router", "traefik_router_requests_total", map[string]string{"router": "broken@file", "code": "502"}, 1},
		// api-svc serves api, api-tls and, through the weighted shop-svc, shop.
		{"api service", "traefik_service_requests_total", map[string]string{"service": "api-svc@file"}, 26},
		// retry3: three attempts on the dead backend for the one request.
		{"dead service retried", "traefik_service_requests_total", map[string]string{"service": "dead-svc@file"}, 3},
		{"tls entrypoint", "traefik_entrypoint_requests_tls_total", map[string]string{"entrypoint": "websecure"}, 6},
		{"tls api-tls router", "traefik_router_requests_tls_total", map[string]string{"router": "api-tls@file"}, 5},
		{"tls api service", "traefik_service_requests_tls_total", map[string]string{"service": "api-svc@file"}, 5},
		{"api router latency observations", "traefik_router_request_duration_seconds_count", map[string]string{"router": "api@file"}, 18},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, after.Sum(tt.metric, tt.match)-before.Sum(tt.metric, tt.match))
		})
	}
	t.Run("health-checked server is up", func(t *testing.T) {
		require.Equal(t, 1.0, after.Sum("traefik_service_server_up", map[string]string{"service": "api-svc@file", "url": backend.URL}))
	})
	t.Run("latency buckets see the slow requests", func(t *testing.T) {
		match := map[string]string{"router": "api@file", "method": "GET", "code": "200", "le": "0.1"}
		require.Equal(t, 4.0, after.Sum("traefik_router_request_duration_seconds_bucket", match),
			"7 GETs answered 200, 3 of them slower than 0.1s")
	})
}

// TestToolsPinTheSameTraefik keeps the cache key honest: the binary is cached
// as traefik-<TraefikVersion>, so e2e/tools/go.mod must build that version.
func TestToolsPinTheSameTraefik(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join("..", "tools", "go.mod"))
	require.NoError(t, err)
	var pinned []string
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/traefik/traefik/v3" {
			pinned = append(pinned, f[1])
		}
	}
	require.Equal(t, []string{TraefikVersion}, pinned)
}
