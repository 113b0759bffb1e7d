package deploytest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/grafana"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

// TestDashboardQueriesParse sends every query of every dashboard, with
// Grafana's macros filled in as Grafana would, to a real influxd: InfluxQL
// parse and compile errors come back from /query.
func TestDashboardQueriesParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "examples", "grafana", "dashboards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)

	srv := influxtest.Start(t)
	require.NoError(t, srv.CreateDatabase(t.Context(), "traefik"))
	to := time.Now().Truncate(time.Second)

	t.Run("a broken query is refused", func(t *testing.T) {
		_, err := srv.Query(t.Context(), "traefik", `SELECT sum("count" FROM "traefik.service.requests.total" WHERE time > now() - 1h`)
		require.Error(t, err)
	})

	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			d, err := grafana.Load(file)
			require.NoError(t, err)
			require.NotEmpty(t, d.UID)
			queries, err := d.Queries()
			require.NoError(t, err)
			require.NotEmpty(t, queries)

			vars := grafana.Vars{From: to.Add(-time.Hour), To: to, Interval: 10 * time.Second, Values: map[string]string{}}
			for _, v := range d.Templating.List {
				if v.Type == "query" {
					require.True(t, v.IncludeAll, "variable %s: without All a fresh database shows nothing", v.Name)
					require.Equal(t, ".*", v.AllValue, "variable %s: All must match series without the tag too", v.Name)
					vars.Values[v.Name] = v.AllValue
				}
			}
			for _, q := range queries {
				t.Run(q.Source, func(t *testing.T) {
					text, err := grafana.Expand(q.Text, vars)
					require.NoError(t, err)
					_, err = srv.Query(t.Context(), "traefik", text)
					require.NoError(t, err, "influxd refused %s:\n%s", q.Source, text)
				})
			}
		})
	}
}

// TestOverviewOnTraefikV2Data writes one interval of data shaped as Traefik
// v2's InfluxDB exporter wrote it (and as the bridge writes it with schema
// traefik) and checks that the overview's panels compute what their titles
// say from it.
func TestOverviewOnTraefikV2Data(t *testing.T) {
	srv := influxtest.Start(t)
	require.NoError(t, srv.CreateDatabase(t.Context(), "traefik"))
	to := time.Now().Truncate(10 * time.Second)
	at := to.Add(-30 * time.Second).Unix()
	notAfter := to.Add(30 * 24 * time.Hour).Unix()
	lines := fmt.Sprintf(`traefik.entrypoint.requests.total,code=200,entrypoint=web,method=GET,protocol=http count=30 %[1]d
traefik.entrypoint.requests.total,code=502,entrypoint=web,method=GET,protocol=http count=10 %[1]d
traefik.service.requests.total,code=200,method=GET,protocol=http,service=api count=8 %[1]d
traefik.service.requests.total,code=502,method=GET,protocol=http,service=api count=2 %[1]d
traefik.service.request.duration,code=200,method=GET,protocol=http,service=api p50=0.01,p90=0.1,p95=0.2,p99=0.5 %[1]d
traefik.entrypoint.request.duration,code=200,entrypoint=web,method=GET,protocol=http p50=0.01,p90=0.1,p95=0.2,p99=0.4 %[1]d
traefik.open.connections,entrypoint=web,host=a,protocol=TCP value=5 %[1]d
traefik.open.connections,entrypoint=web,host=b,protocol=TCP value=7 %[1]d
traefik.service.server.up,service=api,url=http://10.0.0.1:80 value=1 %[1]d
traefik.service.server.up,service=api,url=http://10.0.0.2:80 value=0 %[1]d
traefik.service.server.up,service=api,url=http://10.0.0.3:80 value=1 %[1]d
traefik.tls.certs.notAfterTimestamp,cn=example.com,sans=example.com,serial=1 value=%[2]d %[1]d
traefik.entrypoint.requests.tls.total,entrypoint=websecure,tls_cipher=TLS_AES_128_GCM_SHA256,tls_version=1.3 count=50 %[1]d
`, at, notAfter)
	writeLines(t, srv, "traefik", lines)

	d, err := grafana.Load(filepath.Join(repoRoot(t), "examples", "grafana", "dashboards", "traefik-overview.json"))
	require.NoError(t, err)
	queries, err := d.Queries()
	require.NoError(t, err)
	vars := grafana.Vars{From: to.Add(-time.Hour), To: to, Interval: 10 * time.Second,
		Values: map[string]string{"host": ".*", "entrypoint": ".*", "service": ".*"}}

	tests := []struct {
		panel, target string
		// want is the largest value of each series, by its tags.
		want map[string]float64
	}{
		{panel: "Requests per second by entrypoint", target: "A", want: map[string]float64{"entrypoint=web": 4}},
		{panel: "Requests per second by service", target: "A", want: map[string]float64{"service=api": 1}},
		{panel: "Requests per second by status class", target: "B", want: map[string]float64{"": 3}},
		{panel: "Requests per second by status class", target: "E", want: map[string]float64{"": 1}},
		{panel: "Error ratio (5xx / all) by service", target: "A", want: map[string]float64{"service=api": 0.2}},
		{panel: "Latency p99 by service", target: "A", want: map[string]float64{"service=api": 0.5}},
		{panel: "Open connections by entrypoint", target: "A", want: map[string]float64{"entrypoint=web": 12}},
		{panel: "Backends up by service", target: "A", want: map[string]float64{"service=api": 2}},
		{panel: "Requests per second by TLS version", target: "A", want: map[string]float64{"tls_version=1.3": 5}},
		{panel: "Certificate days to expiry", target: "A", want: map[string]float64{"cn=example.com,sans=example.com": 30}},
	}
	for _, tt := range tests {
		t.Run(tt.panel+" "+tt.target, func(t *testing.T) {
			q := findQuery(t, queries, tt.panel, tt.target)
			text, err := grafana.Expand(q.Text, vars)
			require.NoError(t, err)
			series, err := srv.Query(t.Context(), "traefik", text)
			require.NoError(t, err)
			got := map[string]float64{}
			for _, s := range series {
				got[tagString(s.Tags)] = maxValue(t, s)
			}
			require.InDeltaMapValues(t, tt.want, got, 1e-9, "%s", text)
		})
	}
}

func findQuery(t *testing.T, qs []grafana.Query, panel, refID string) grafana.Query {
	t.Helper()
	for _, q := range qs {
		if strings.Contains(q.Source, strconv.Quote(panel)) && strings.HasSuffix(q.Source, " target "+refID) {
			return q
		}
	}
	t.Fatalf("no target %s in panel %q", refID, panel)
	return grafana.Query{}
}

func tagString(tags map[string]string) string {
	var kv []string
	for k, v := range tags {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// maxValue is the largest non-null value in the series' last column.
func maxValue(t *testing.T, s influxtest.Series) float64 {
	t.Helper()
	best := math.Inf(-1)
	for _, row := range s.Values {
		n, ok := row[len(row)-1].(json.Number)
		if !ok {
			continue
		}
		f, err := n.Float64()
		require.NoError(t, err)
		best = max(best, f)
	}
	return best
}

// writeLines writes line protocol (seconds) with the admin's credentials.
func writeLines(t *testing.T, srv *influxtest.Server, db, lines string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/write?precision=s&db="+url.QueryEscape(db), strings.NewReader(lines))
	require.NoError(t, err)
	req.SetBasicAuth(srv.Username, srv.Password)
	client := srv.HTTPClient()
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s", body)
}
