package sink

import (
	"bytes"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
)

func TestSelfMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig("http://127.0.0.1:8086")
		cfg.Batch.MaxBytes = 1024
		cfg.Buffer.MaxBytes = 2048
		h := newHarness(t, cfg)

		// promlint reads the page as Prometheus would.
		tp := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := tp.TextToMetricFamilies(bytes.NewReader(metrics.AppendText(nil, h.reg.Gather())))
		require.NoError(t, err)
		problems, err := promlint.NewWithMetricFamilies(slices.Collect(maps.Values(fams))).Lint()
		require.NoError(t, err)
		require.Empty(t, problems)

		h.appendLines(t, "a v=1 1", "a v=2 1") // 16 bytes
		time.Sleep(90 * time.Second)           // fake time: the record ages
		h.appendLines(t, "b v=1 1")            // 8 bytes
		// 16+8+2045 bytes is over the 2048 cap: both records above go.
		big := make([]byte, 2045)
		for i := range big {
			big[i] = 'x'
		}
		big[len(big)-1] = '\n'
		require.NoError(t, h.q.Append(big, 1))
		h.sink.m.queueAndDrops.drop(ReasonPartialWrite, 4)

		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"traefik_influxdb_bridge_buffer_bytes", nil, 2045},
			{"traefik_influxdb_bridge_buffer_max_bytes", nil, 2048},
			{"traefik_influxdb_bridge_buffer_batches", nil, 1},
			{"traefik_influxdb_bridge_buffer_lines", nil, 1},
			{"traefik_influxdb_bridge_buffer_oldest_age_seconds", nil, 0},
			{"traefik_influxdb_bridge_points_dropped_total", []string{"reason", "buffer_full"}, 3},
			{"traefik_influxdb_bridge_points_dropped_total", []string{"reason", "partial_write"}, 4},
			{"traefik_influxdb_bridge_points_dropped_total", []string{"reason", "corrupt"}, 0},
			{"traefik_influxdb_bridge_influxdb_up", nil, 0},
		} {
			require.Equal(t, c.want, h.metric(t, c.name, c.labels...), "%s %v", c.name, c.labels)
		}
		time.Sleep(30 * time.Second)
		require.Equal(t, 30.0, h.metric(t, "traefik_influxdb_bridge_buffer_oldest_age_seconds"))

		// Every drop reason and status class is exported from the start.
		series := map[string]int{}
		for _, f := range h.reg.Gather() {
			series[f.Name] = len(f.Metrics)
		}
		require.Equal(t, 5, series["traefik_influxdb_bridge_points_dropped_total"])
		require.Equal(t, 4, series["traefik_influxdb_bridge_writes_total"])
	})
}
