package e2e

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/e2e/harness"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

// TestSidecar runs the sidecar topology: one Traefik from examples/traefik,
// a backend, an HTTPS InfluxDB with authentication, and three bridges from
// examples/bridge/sidecar.yaml scraping that Traefik, one per schema, each
// into a database of its own. One run of traffic feeds all three; after each
// phase (steady traffic, an InfluxDB outage, a Traefik restart) every schema
// must hold exactly what Traefik counted.
func TestSidecar(t *testing.T) {
	st := startStack(t, harness.StartBackend)
	bridgeBin, influx := st.bridgeBin, st.influx
	tr := harness.StartTraefik(t, st.traefik)
	ctx := t.Context()

	schemas := []string{"traefik", "prometheus", "telegraf"}
	db := map[string]string{}
	var bridges []*harness.Bridge
	for _, schema := range schemas {
		db[schema] = "e2e_" + schema
		// Created up front so that these runs do not depend on
		// influxdb.create_database; TestStandalone relies on it instead.
		require.NoError(t, influx.CreateDatabase(ctx, db[schema]))
		bridges = append(bridges, harness.StartBridge(t, harness.BridgeOptions{
			Binary: bridgeBin,
			Config: examplePath(t, "bridge", "sidecar.yaml"),
			Env:    bridgeEnv(t, influx, db[schema], schema, tr),
			Name:   "bridge-" + schema,
		}))
	}
	// The traefik schema's first scrape of a target is its baseline: no
	// request may happen before every bridge has made it.
	for _, b := range bridges {
		require.NoError(t, b.WaitScrapes(ctx, wait, 1, tr.MetricsURL))
		// traefik.format auto: Traefik answers in protobuf.
		requirePagesIn(t, b, "protobuf")
	}
	base, err := tr.Metrics(ctx)
	require.NoError(t, err)

	// One Traefik: no instance tag, so the series sit under instance "".
	const inst = ""
	tags := bridgeTags(nil)
	expected := ledger{}
	sums := durationSums{}
	check := func(t *testing.T, final harness.Samples) {
		t.Run("traefik schema counts equal Traefik's increase", func(t *testing.T) {
			requireEventually(t, traefikCounts(influx, db["traefik"], inst, tags),
				map[string]map[string]float64{inst: expected.want()}, false)
		})
		t.Run("traefik schema latency sums equal Traefik's increase", func(t *testing.T) {
			// Seconds are floats: the bridge's per-interval differences add
			// up to Traefik's increase only up to rounding.
			got, err := traefikDurationSums(influx, db["traefik"], inst, tags)(t.Context())
			require.NoError(t, err)
			want := map[string]float64{}
			for k, v := range sums {
				if v != 0 {
					want[k] = v
				}
			}
			require.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(got[inst].Values())))
			for k, v := range want {
				require.InEpsilon(t, v, got[inst][k].Value, 1e-9, k)
			}
		})
		t.Run("traefik schema gauges equal Traefik's", func(t *testing.T) {
			requireEventually(t, traefikGauges(influx, db["traefik"], inst, tags),
				map[string]map[string]float64{inst: gauges(final)}, true)
		})
		t.Run("traefik schema latency quantiles are ordered", func(t *testing.T) {
			checkLatency(t, influx, db["traefik"], tags, expected)
		})
		t.Run("prometheus schema equals Traefik's last scrape", func(t *testing.T) {
			requireEventually(t, prometheusLast(influx, db["prometheus"], inst, tags),
				map[string]map[string]float64{inst: cumulative(final)}, true)
		})
		t.Run("telegraf schema equals Traefik's last scrape", func(t *testing.T) {
			requireEventually(t, telegrafLast(influx, db["telegraf"], tr.MetricsURL, inst, tags),
				map[string]map[string]float64{inst: cumulative(final)}, true)
		})
	}

	// Phase 1: traffic with everything up.
	_, err = harness.Send(ctx, tr, harness.Mix(2))
	require.NoError(t, err)
	final := settle(t, []*harness.Traefik{tr}, bridges)[0]
	expected.add(base, final)
	sums.add(base, final)
	require.NotEmpty(t, expected.want())
	t.Logf("steady: %d moving series, %d gauges, %d samples to compare", len(expected.want()), len(gauges(final)), len(cumulative(final)))
	t.Run("steady", func(t *testing.T) { check(t, final) })

	// Phase 2: InfluxDB is down while traffic flows and the bridges scrape;
	// the buffers keep the points until it is back.
	require.NoError(t, influx.Stop())
	_, err = harness.Send(ctx, tr, harness.Mix(1))
	require.NoError(t, err)
	for _, b := range bridges {
		require.NoError(t, b.WaitScrapes(ctx, wait, 2, tr.MetricsURL))
		p, err := b.Progress(ctx)
		require.NoError(t, err)
		require.Positive(t, p.BufferBytes, "InfluxDB is down, so the buffer must hold the scrapes")
	}
	require.NoError(t, influx.StartAgain(ctx))
	final2 := settle(t, []*harness.Traefik{tr}, bridges)[0]
	expected.add(final, final2)
	sums.add(final, final2)
	t.Logf("influxdb restart: %d moving series, %d gauges, %d samples to compare", len(expected.want()), len(gauges(final2)), len(cumulative(final2)))
	t.Run("influxdb restart", func(t *testing.T) { check(t, final2) })

	// Phase 3: Traefik restarts, and every counter starts again from zero.
	// Its counters just before the stop are final2: nothing was sent since.
	require.NoError(t, tr.Stop())
	for _, b := range bridges {
		_, err := b.WaitFor(ctx, wait, "failed scrape of the stopped Traefik", func(p harness.Progress) bool {
			return p.Failed(tr.MetricsURL) > 0
		})
		require.NoError(t, err)
	}
	require.NoError(t, tr.Start(ctx))
	// Let every bridge see the fresh counters before new traffic, so a reset
	// is visible even to a bridge that detects it series by series.
	for _, b := range bridges {
		require.NoError(t, b.WaitScrapes(ctx, wait, 1, tr.MetricsURL))
	}
	_, err = harness.Send(ctx, tr, harness.Mix(1))
	require.NoError(t, err)
	final3 := settle(t, []*harness.Traefik{tr}, bridges)[0]
	expected.add(nil, final3)
	sums.add(nil, final3)
	t.Logf("traefik restart: %d moving series, %d gauges, %d samples to compare", len(expected.want()), len(gauges(final3)), len(cumulative(final3)))
	t.Run("traefik restart", func(t *testing.T) { check(t, final3) })
}

// checkLatency checks every latency point of the traefik schema: p50 <= p90
// <= p95 <= p99, a positive count, a point for each series that had traffic,
// and the slow requests visible in the p99 of the router they went through.
func checkLatency(t *testing.T, srv *influxtest.Server, db string, tags map[string]string, expected ledger) {
	rows, err := harness.QueryRows(t.Context(), srv, db,
		`SELECT "p50", "p90", "p95", "p99", "count" FROM /^traefik\.(entrypoint|router|service)\.request\.duration$/ GROUP BY *`)
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	for _, r := range rows {
		f := r.Fields
		for _, q := range []string{"p50", "p90", "p95", "p99", "count"} {
			require.Contains(t, f, q, "%s %v", r.Measurement, r.Tags)
		}
		require.GreaterOrEqual(t, f["p50"], 0.0, "%s %v", r.Measurement, r.Tags)
		require.LessOrEqual(t, f["p50"], f["p90"], "%s %v", r.Measurement, r.Tags)
		require.LessOrEqual(t, f["p90"], f["p95"], "%s %v", r.Measurement, r.Tags)
		require.LessOrEqual(t, f["p95"], f["p99"], "%s %v", r.Measurement, r.Tags)
		require.Positive(t, f["count"], "%s %v", r.Measurement, r.Tags)
	}

	samples, err := harness.FromTraefikSchema(rows, "count")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, s := range samples {
		for k := range tags {
			delete(s.Labels, k)
		}
		seen[s.Key()] = true
	}
	want := map[string]bool{}
	for k, v := range expected.want() {
		if harness.IsHistogramCount(k) && v > 0 {
			want[k] = true
		}
	}
	require.Equal(t, want, seen, "latency series in InfluxDB vs Traefik histograms that moved")

	// Requests of 150ms and 400ms went through the api router as GET 200:
	// whatever the interval they fell in, its p99 is above the 0.1s bucket.
	var maxP99 float64
	for _, r := range rows {
		if r.Measurement == "traefik.router.request.duration" && r.Tags["router"] == "api@file" &&
			r.Tags["method"] == "GET" && r.Tags["code"] == "200" {
			maxP99 = max(maxP99, r.Fields["p99"])
		}
	}
	require.Greater(t, maxP99, 0.1)
}
