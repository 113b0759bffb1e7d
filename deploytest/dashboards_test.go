package deploytest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/deploytest/grafana"
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
