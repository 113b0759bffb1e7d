package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/e2e/harness"
)

// TestStandalone runs one bridge from examples/bridge/standalone.yaml
// scraping two Traefik instances that get different traffic: each
// instance's points carry its own instance tag, and each is exact on its own.
// It asks for the text format (traefik.format text).
func TestStandalone(t *testing.T) {
	st := startStack(t, harness.StartBackend)
	bridgeBin, influx := st.bridgeBin, st.influx
	var traefiks []*harness.Traefik
	for _, name := range []string{"traefik-a", "traefik-b"} {
		opts := st.traefik
		opts.Name = name
		traefiks = append(traefiks, harness.StartTraefik(t, opts))
	}
	ctx := t.Context()
	const db = "e2e_standalone"
	env := bridgeEnv(t, influx, db, "traefik", traefiks...)
	// The other tests scrape in the default format, which Traefik answers
	// in protobuf; this one keeps the text path checked against a real
	// Traefik.
	env["TIB_TRAEFIK_FORMAT"] = "text"
	bridge := harness.StartBridge(t, harness.BridgeOptions{
		Binary: bridgeBin,
		Config: examplePath(t, "bridge", "standalone.yaml"),
		Env:    env,
	})
	targets := []string{traefiks[0].MetricsURL, traefiks[1].MetricsURL}
	require.NoError(t, bridge.WaitScrapes(ctx, wait, 1, targets...))
	requirePagesIn(t, bridge, "text")

	var bases []harness.Samples
	for _, tr := range traefiks {
		s, err := tr.Metrics(ctx)
		require.NoError(t, err)
		bases = append(bases, s)
	}
	// Different scales: mixed-up points could not pass for either instance.
	for i, tr := range traefiks {
		_, err := harness.Send(ctx, tr, harness.Mix(1+2*i))
		require.NoError(t, err)
	}
	finals := settle(t, traefiks, []*harness.Bridge{bridge})

	wantCounts := map[string]map[string]float64{}
	wantGauges := map[string]map[string]float64{}
	for i, tr := range traefiks {
		l := ledger{}
		l.add(bases[i], finals[i])
		wantCounts[instanceOf(tr)] = l.want()
		wantGauges[instanceOf(tr)] = gauges(finals[i])
	}
	require.NotEqual(t, wantCounts[instanceOf(traefiks[0])], wantCounts[instanceOf(traefiks[1])])
	t.Logf("moving series per instance: %d and %d", len(wantCounts[instanceOf(traefiks[0])]), len(wantCounts[instanceOf(traefiks[1])]))
	// examples/bridge/standalone.yaml adds cluster=edge to every point.
	tags := bridgeTags(map[string]string{"cluster": "edge"})

	t.Run("counts of each instance equal its own Traefik's increase", func(t *testing.T) {
		requireEventually(t, traefikCounts(influx, db, instanceTag(len(traefiks)), tags), wantCounts, false)
	})
	t.Run("gauges of each instance equal its own Traefik's", func(t *testing.T) {
		requireEventually(t, traefikGauges(influx, db, instanceTag(len(traefiks)), tags), wantGauges, true)
	})
}
