package deploytest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/grafana"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

// TestBridgeHealthOnBridgeData runs the real bridge for a few seconds against
// a Traefik page served here and a real influxd, with self_metrics.write on,
// and checks that every panel of the health board gets rows from what the
// bridge wrote about itself: the board and the self-metrics agree on names,
// tags and fields.
func TestBridgeHealthOnBridgeData(t *testing.T) {
	bin := bridgeBinary(t)
	srv := influxtest.Start(t)

	page := `# TYPE traefik_config_reloads_total counter
traefik_config_reloads_total 3
# TYPE traefik_entrypoint_requests_total counter
traefik_entrypoint_requests_total{code="200",entrypoint="web",method="GET",protocol="http"} %d
`
	var n atomic.Int64
	traefik := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, page, 10*n.Add(1))
	}))
	t.Cleanup(traefik.Close)

	dir := t.TempDir()
	cfg := fmt.Sprintf(`traefik:
  urls: [%s/metrics]
  interval: 1s
  timeout: 900ms
influxdb:
  url: %s
  database: traefik
  username: %s
  password_file: %s
  precision: ms
  tls:
    ca_file: %s
buffer:
  dir: %s
listen: 127.0.0.1:0
`, traefik.URL, srv.URL, srv.Username, filepath.Join(dir, "pw"), srv.CAFile, filepath.Join(dir, "buffer"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw"), []byte(srv.Password), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600))

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TIB_") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "config.yaml"))
	cmd.Env = append(env, "HOSTNAME=bridge-under-test")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("bridge output:\n%s", logs.String())
		}
	})

	// Enough self-metric snapshots for a derivative over 1s buckets.
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := srv.Query(t.Context(), "traefik", `SELECT count("value") FROM "traefik_influxdb_bridge_points_written_total"`)
		if err == nil && len(s) == 1 && maxValue(t, s[0]) >= 5 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the bridge wrote too few self-metrics in time (last: %v %v)", s, err)
		time.Sleep(500 * time.Millisecond)
	}
	stop()

	d, err := grafana.Load(filepath.Join(repoRoot(t), "examples", "grafana", "dashboards", "bridge-health.json"))
	require.NoError(t, err)
	queries, err := d.Queries()
	require.NoError(t, err)
	to := time.Now().Add(time.Second)
	vars := grafana.Vars{From: to.Add(-5 * time.Minute), To: to, Interval: time.Second, Values: map[string]string{"host": ".*"}}
	for _, q := range queries {
		t.Run(q.Source, func(t *testing.T) {
			text, err := grafana.Expand(q.Text, vars)
			require.NoError(t, err)
			series, err := srv.Query(t.Context(), "traefik", text)
			require.NoError(t, err)
			require.NotEmpty(t, series, "no rows for %s:\n%s", q.Source, text)
			if strings.HasPrefix(q.Source, "variable") {
				require.Equal(t, "bridge-under-test", fmt.Sprint(series[0].Values[0][1]))
				return
			}
			var values int
			for _, s := range series {
				require.Equal(t, "bridge-under-test", s.Tags["host"])
				for _, row := range s.Values {
					if row[len(row)-1] != nil {
						values++
					}
				}
			}
			require.NotZero(t, values, "only nulls for %s:\n%s", q.Source, text)
		})
	}
}
