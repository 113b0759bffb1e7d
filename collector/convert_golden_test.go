package collector

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the converter's output")

// scrapeFixtures are the real Traefik v3.6.12 pages, in scrape order.
var scrapeFixtures = []string{
	"traefik-v3.6.12-scrape-1.prom",
	"traefik-v3.6.12-scrape-2.prom",
	"traefik-v3.6.12-scrape-3-after-restart.prom",
}

func readScrapes(t testing.TB) []string {
	t.Helper()
	pages := make([]string, len(scrapeFixtures))
	for i, name := range scrapeFixtures {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		pages[i] = string(b)
	}
	return pages
}

// TestConvertGolden feeds the three scrapes, ten seconds apart, to one
// converter per schema and compares the output with testdata/golden. The
// golden files were produced by the converter; the assertions after them
// pin values worked out by hand from the fixture numbers, so a golden file
// rewritten with -update cannot silently carry a wrong value for them.
func TestConvertGolden(t *testing.T) {
	pages := readScrapes(t)
	for _, schema := range []string{"traefik", "prometheus", "telegraf"} {
		t.Run(schema, func(t *testing.T) {
			c := newTestConverter(t, schema, func(o *ConvertOptions) {
				o.Include = []string{"traefik_*"}
				o.URL = "http://127.0.0.1:29100/metrics"
			})
			scrapes := make([]map[string]point, len(pages))
			for i, page := range pages {
				out, st := convertPage(t, c, page, t0.Add(time.Duration(i)*10*time.Second))
				golden := filepath.Join("testdata", "golden", schema, strings.TrimSuffix(scrapeFixtures[i], ".prom")+".lp")
				if *update {
					require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
					require.NoError(t, os.WriteFile(golden, out, 0o644))
				}
				want, err := os.ReadFile(golden)
				require.NoError(t, err)
				require.Equal(t, string(want), string(out), "%s differs from the converter's output (go test -run TestConvertGolden -update rewrites it)", golden)

				pts := decodeLP(t, out)
				require.Equal(t, len(pts), st.Points)
				require.Zero(t, st.Skipped)
				for _, p := range pts {
					require.Equal(t, 1700000000+10*int64(i), p.ts, "every point of a scrape has its time")
					require.Equal(t, "test", p.tags["host"])
				}
				scrapes[i] = byID(t, pts)
			}
			switch schema {
			case "traefik":
				checkTraefikGolden(t, scrapes)
			case "prometheus":
				checkPrometheusGolden(t, scrapes)
			case "telegraf":
				checkTelegrafGolden(t, scrapes)
			}
		})
	}
}

// field returns one field of one series, failing if it is not there.
func field(t *testing.T, pts map[string]point, id, name string) float64 {
	t.Helper()
	p, ok := pts[id]
	require.True(t, ok, "no point for %s", id)
	v, ok := p.fields[name]
	require.True(t, ok, "no field %s in %s: %v", name, id, p.fields)
	return v
}

func checkTraefikGolden(t *testing.T, s []map[string]point) {
	const (
		svc404 = "traefik.service.requests.total,code=404,host=test,method=GET,protocol=http,service=api-svc@file"
		dur404 = "traefik.service.request.duration,code=404,host=test,method=GET,protocol=http,service=api-svc@file"
		tls    = "traefik.service.requests.tls.total,host=test,service=api-svc@file,tls_cipher=TLS_AES_128_GCM_SHA256,tls_version=1.3"
		conns  = "traefik.open.connections,entrypoint=metrics,host=test,protocol=TCP"
		reload = "traefik.config.reload.total,host=test"
		put    = "traefik.router.requests.total,code=501,host=test,method=PUT,protocol=http,router=api@file,service=api-svc@file"
		up     = "traefik.service.server.up,host=test,service=api-svc@file,url=http://127.0.0.1:18080"
		cert   = "traefik.tls.certs.notAfterTimestamp,cn=localhost,host=test,sans=localhost,serial=603435501592737309860915919971814410927046421641"
	)
	t.Run("scrape 1 is a baseline: gauges only", func(t *testing.T) {
		gauges := map[string]bool{
			"traefik.config.reload.lastSuccessTimestamp": true, "traefik.open.connections": true,
			"traefik.service.server.up": true, "traefik.tls.certs.notAfterTimestamp": true,
		}
		for id, p := range s[0] {
			require.True(t, gauges[p.meas], "%s written on the baseline", id)
		}
		require.Len(t, s[0], 1+3+1+1) // last reload, 3 entrypoints, 1 server, 1 cert
		require.Equal(t, 1.0, field(t, s[0], conns, "value"))
		require.Equal(t, 1.79818638e+09, field(t, s[0], cert, "value"))
	})
	t.Run("scrape 1 to 2: increases", func(t *testing.T) {
		require.Equal(t, 20.0, field(t, s[1], svc404, "count"), "36 -> 56")
		require.Equal(t, 3.0, field(t, s[1], tls, "count"), "6 -> 9")
		require.Equal(t, 3.0, field(t, s[1], put, "count"), "new in scrape 2: counts from zero")
		require.NotContains(t, s[1], reload, "2 -> 2: no increase, no point")
		// 20 new observations, all in le=0.1: rank q*20 inside (0, 0.1].
		require.Equal(t, 20.0, field(t, s[1], dur404, "count"))
		require.InDelta(t, 0.06256389-0.040428739, field(t, s[1], dur404, "sum"), 1e-12)
		require.InDelta(t, 0.05, field(t, s[1], dur404, "p50"), 1e-12)
		require.InDelta(t, 0.09, field(t, s[1], dur404, "p90"), 1e-12)
		require.InDelta(t, 0.095, field(t, s[1], dur404, "p95"), 1e-12)
		require.InDelta(t, 0.099, field(t, s[1], dur404, "p99"), 1e-12)
		require.Equal(t, 1.0, field(t, s[1], conns, "value"))
		require.Equal(t, 1.0, field(t, s[1], up, "value"))
	})
	t.Run("scrape 2 to 3: Traefik restarted", func(t *testing.T) {
		require.Equal(t, 5.0, field(t, s[2], svc404, "count"), "56 -> 5: reset, counts from zero")
		require.Equal(t, 2.0, field(t, s[2], reload, "count"), "2 -> 2 but process_start_time_seconds changed")
		require.Equal(t, 5.0, field(t, s[2], dur404, "count"))
		require.InDelta(t, 0.006117533999999999, field(t, s[2], dur404, "sum"), 1e-15)
		require.InDelta(t, 0.05, field(t, s[2], dur404, "p50"), 1e-12)
		require.NotContains(t, s[2], tls, "gone after the restart")
	})
}

func checkPrometheusGolden(t *testing.T, s []map[string]point) {
	const svc404 = "traefik_service_requests_total,code=404,host=test,method=GET,protocol=http,service=api-svc@file"
	const inf404 = "traefik_service_request_duration_seconds_bucket,code=404,host=test,le=+Inf,method=GET,protocol=http,service=api-svc@file"
	// Cumulative values, every traefik_* sample of the page (240, 270, 37 lines).
	for i, want := range []float64{36, 56, 5} {
		require.Equal(t, want, field(t, s[i], svc404, "value"))
		require.Equal(t, want, field(t, s[i], inf404, "value"))
	}
	require.Len(t, s[0], 240)
	require.Len(t, s[1], 270)
	require.Len(t, s[2], 37)
}

func checkTelegrafGolden(t *testing.T, s []map[string]point) {
	const url = ",url=http://127.0.0.1:29100/metrics"
	svc404 := "traefik_service_requests_total,code=404,host=test,method=GET,protocol=http,service=api-svc@file" + url
	dur404 := "traefik_service_request_duration_seconds,code=404,host=test,method=GET,protocol=http,service=api-svc@file" + url
	// The page's own url label wins over Telegraf's url tag (see
	// ConvertOptions.URL).
	up := "traefik_service_server_up,host=test,service=api-svc@file,url=http://127.0.0.1:18080"
	conns := "traefik_open_connections,entrypoint=metrics,host=test,protocol=TCP" + url
	require.Equal(t, 36.0, field(t, s[0], svc404, "counter"))
	require.Equal(t, 56.0, field(t, s[1], svc404, "counter"))
	require.Equal(t, 5.0, field(t, s[2], svc404, "counter"))
	require.Equal(t, 1.0, field(t, s[0], up, "gauge"))
	require.Equal(t, 1.0, field(t, s[0], conns, "gauge"))
	require.Equal(t, map[string]float64{"0.1": 36, "0.3": 36, "1.2": 36, "5": 36, "+Inf": 36, "count": 36, "sum": 0.040428739},
		s[0][dur404].fields)
	require.Equal(t, map[string]float64{"0.1": 5, "0.3": 5, "1.2": 5, "5": 5, "+Inf": 5, "count": 5, "sum": 0.006117533999999999},
		s[2][dur404].fields)
}
