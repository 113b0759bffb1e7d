package e2e

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/e2e/harness"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

const (
	// interval is the bridge's scrape interval in the suite: short, so each
	// phase settles in seconds; precision ms keeps every scrape's points apart.
	interval = "1s"
	// selfPrefix starts the measurements of the bridge's own metrics.
	selfPrefix = "traefik_influxdb_bridge"
	// wait bounds every wait on a process; generous for a loaded 2-core machine.
	wait = 30 * time.Second
)

// gaugeFamilies are the Traefik gauges; everything else with a traefik_
// prefix is a counter or a histogram.
var gaugeFamilies = map[string]bool{
	"traefik_open_connections":           true,
	"traefik_service_server_up":          true,
	"traefik_tls_certs_not_after":        true,
	"traefik_config_last_reload_success": true,
}

// movesOnItsOwn is the one series whose value depends on when it is read,
// not on the traffic: the metrics entrypoint's open connections count the
// scrapers (the bridges and the test) that happen to be connected.
func movesOnItsOwn(s harness.Sample) bool {
	return s.Name == "traefik_open_connections" && s.Labels["entrypoint"] == "metrics"
}

// counted is what the traefik schema writes as a per-interval increase
// (field count): the counters, and the number of observations of each
// latency histogram.
func counted(s harness.Sample) bool {
	return strings.HasPrefix(s.Name, "traefik_") &&
		(strings.HasSuffix(s.Name, "_total") || strings.HasSuffix(s.Name, "_request_duration_seconds_count"))
}

// ledger is what the bridge must have reported for each series: the sum of
// the increases of Traefik's own counter over the test.
type ledger map[string]float64

// add records the increase from one read of Traefik's counters to a later one
// of the same process; from is nil after a restart (counters start at zero).
func (l ledger) add(from, to harness.Samples) {
	for k, s := range to {
		if counted(s) {
			l[k] += s.Value - from[k].Value
		}
	}
}

// durationSums is the other half of the latency histograms: the increase of
// each _sum (seconds spent), which the traefik schema writes as field sum.
type durationSums map[string]float64

func (d durationSums) add(from, to harness.Samples) {
	for k, s := range to {
		if strings.HasPrefix(s.Name, "traefik_") && strings.HasSuffix(s.Name, "_request_duration_seconds_sum") {
			d[k] += s.Value - from[k].Value
		}
	}
}

// want is the ledger without zeros: a series that did not move has no point.
func (l ledger) want() map[string]float64 {
	out := map[string]float64{}
	for k, v := range l {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// gauges are Traefik's gauge samples, as the traefik schema's value fields
// must show them after the last scrape.
func gauges(s harness.Samples) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if gaugeFamilies[v.Name] && !movesOnItsOwn(v) {
			out[k] = v.Value
		}
	}
	return out
}

// cumulative is every Traefik sample as the prometheus and telegraf schemas
// must show it after the last scrape.
func cumulative(s harness.Samples) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if strings.HasPrefix(v.Name, "traefik_") && !movesOnItsOwn(v) {
			out[k] = v.Value
		}
	}
	return out
}

// instanceOf is the instance tag the bridge gives a target when it scrapes
// several: the target's host:port.
func instanceOf(tr *harness.Traefik) string { return tr.Entrypoints["metrics"] }

// hostName is the bridges' $HOSTNAME, which the collector writes as the host
// tag of every point.
const hostName = "e2e-host"

// bridgeTags are the tags the bridge adds to every point: host, and extra
// (the tags of the configuration file).
func bridgeTags(extra map[string]string) map[string]string {
	tags := map[string]string{"host": hostName}
	maps.Copy(tags, extra)
	return tags
}

// reader reads one schema's view of the database, by instance, as
// Prometheus-named series values.
type reader func(ctx context.Context) (map[string]harness.Samples, error)

// instanceTag is the instance tag of the suite's bridges: empty with a single
// Traefik (the collector adds it only with several), "instance" with several.
func instanceTag(traefiks int) string {
	if traefiks > 1 {
		return "instance"
	}
	return ""
}

func read(srv *influxtest.Server, db, q string, conv func([]harness.Row) ([]harness.Sample, error), inst string, tags map[string]string) reader {
	return func(ctx context.Context) (map[string]harness.Samples, error) {
		rows, err := harness.QueryRows(ctx, srv, db, q)
		if err != nil {
			return nil, err
		}
		samples, err := conv(rows)
		if err != nil {
			return nil, err
		}
		samples = slices.DeleteFunc(samples, movesOnItsOwn)
		return harness.ByInstance(samples, inst, tags)
	}
}

// traefikCounts reads sum(count) of every traefik-schema series.
func traefikCounts(srv *influxtest.Server, db, inst string, tags map[string]string) reader {
	return read(srv, db, `SELECT sum("count") AS "count" FROM /^traefik\./ GROUP BY *`,
		func(rows []harness.Row) ([]harness.Sample, error) { return harness.FromTraefikSchema(rows, "count") }, inst, tags)
}

// traefikDurationSums reads sum(sum) of every traefik-schema latency series.
func traefikDurationSums(srv *influxtest.Server, db, inst string, tags map[string]string) reader {
	return read(srv, db, `SELECT sum("sum") AS "sum" FROM /^traefik\.[a-z]+\.request\.duration$/ GROUP BY *`,
		func(rows []harness.Row) ([]harness.Sample, error) { return harness.FromTraefikSchema(rows, "sum") }, inst, tags)
}

// traefikGauges reads the last value of every traefik-schema gauge.
func traefikGauges(srv *influxtest.Server, db, inst string, tags map[string]string) reader {
	return read(srv, db, `SELECT last("value") AS "value" FROM /^traefik\./ GROUP BY *`,
		func(rows []harness.Row) ([]harness.Sample, error) { return harness.FromTraefikSchema(rows, "value") }, inst, tags)
}

// prometheusLast reads the last value of every prometheus-schema series.
func prometheusLast(srv *influxtest.Server, db, inst string, tags map[string]string) reader {
	return read(srv, db, `SELECT last("value") AS "value" FROM /^traefik_/ GROUP BY *`,
		func(rows []harness.Row) ([]harness.Sample, error) {
			return harness.FromPrometheusSchema(rows, selfPrefix), nil
		}, inst, tags)
}

// telegrafLast reads the last value of every field of every telegraf-schema
// series. As Telegraf does, the bridge tags each point with the scraped URL
// (url) unless Traefik's own labels have a url (traefik_service_server_up):
// the tag is checked and removed, Traefik's label kept.
func telegrafLast(srv *influxtest.Server, db, scrapeURL, inst string, tags map[string]string) reader {
	return read(srv, db, `SELECT last(*) FROM /^traefik_/ GROUP BY *`,
		func(rows []harness.Row) ([]harness.Sample, error) {
			for _, r := range rows {
				for k, v := range r.Fields { // last(*) names its columns last_<field>
					delete(r.Fields, k)
					r.Fields[strings.TrimPrefix(k, "last_")] = v
				}
			}
			samples := harness.FromTelegrafSchema(rows, selfPrefix)
			for _, s := range samples {
				switch s.Labels["url"] {
				case "":
					return nil, fmt.Errorf("%s: no url tag", s.Key())
				case scrapeURL:
					delete(s.Labels, "url")
				}
			}
			return samples, nil
		}, inst, tags)
}

// requireEventually reads until, for each instance, the values equal want
// (after keep, if not nil), then returns; at the deadline it fails with the
// difference. Points reach InfluxDB a moment after the bridge's buffer
// empties, so one read could come too early; a wrong value never converges.
func requireEventually(t *testing.T, r reader, want map[string]map[string]float64, zeros bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := r(t.Context())
		values := map[string]map[string]float64{}
		for inst, s := range got {
			if zeros {
				values[inst] = map[string]float64{}
				for k, v := range s {
					values[inst][k] = v.Value
				}
			} else {
				values[inst] = s.Values()
			}
		}
		if err == nil && equalNested(values, want) {
			return
		}
		if time.Now().After(deadline) {
			require.NoError(t, err)
			require.Equal(t, want, values)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func equalNested(a, b map[string]map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || !maps.Equal(av, bv) {
			return false
		}
	}
	return true
}

// settle waits until everything Traefik counted has reached InfluxDB through
// every bridge: each bridge has scraped every target twice after the last
// request (so it saw the final counters), the test reads Traefik's counters,
// each bridge scrapes once more and empties its buffer.
func settle(t *testing.T, traefiks []*harness.Traefik, bridges []*harness.Bridge) []harness.Samples {
	t.Helper()
	ctx := t.Context()
	targets := make([]string, len(traefiks))
	for i, tr := range traefiks {
		targets[i] = tr.MetricsURL
	}
	for _, b := range bridges {
		require.NoError(t, b.WaitScrapes(ctx, wait, 2, targets...))
	}
	finals := make([]harness.Samples, len(traefiks))
	for i, tr := range traefiks {
		s, err := tr.Metrics(ctx)
		require.NoError(t, err)
		finals[i] = s
	}
	for _, b := range bridges {
		require.NoError(t, b.WaitScrapes(ctx, wait, 1, targets...))
		require.NoError(t, b.WaitDrained(ctx, wait))
		p, err := b.Progress(ctx)
		require.NoError(t, err)
		require.Zero(t, p.Dropped, "the bridge dropped points")
	}
	return finals
}

func examplePath(t testing.TB, parts ...string) string {
	t.Helper()
	root, err := harness.RepoRoot()
	require.NoError(t, err)
	return filepath.Join(append([]string{root, "examples"}, parts...)...)
}

// bridgeEnv points an example bridge configuration at the suite's servers.
// Everything else comes from the example file.
func bridgeEnv(t testing.TB, srv *influxtest.Server, db, schema string, traefiks ...*harness.Traefik) map[string]string {
	urls := make([]string, len(traefiks))
	for i, tr := range traefiks {
		urls[i] = tr.MetricsURL
	}
	return map[string]string{
		"TIB_TRAEFIK_URLS":         strings.Join(urls, ","),
		"TIB_TRAEFIK_INTERVAL":     interval,
		"TIB_TRAEFIK_TIMEOUT":      interval,
		"TIB_INFLUXDB_URL":         srv.URL,
		"TIB_INFLUXDB_USERNAME":    srv.Username,
		"TIB_INFLUXDB_PASSWORD":    srv.Password,
		"TIB_INFLUXDB_TLS_CA_FILE": srv.CAFile,
		"TIB_INFLUXDB_DATABASE":    db,
		"TIB_INFLUXDB_PRECISION":   "ms",
		"TIB_SCHEMA":               schema,
		"TIB_BUFFER_DIR":           t.TempDir(),
		// The outage of the InfluxDB-restart phase lasts seconds; the default
		// backoff cap (1m) would only make the suite slower.
		"TIB_RETRY_MAX_BACKOFF": "2s",
		"HOSTNAME":              hostName,
	}
}

// stack is what every test with a real Traefik starts first: the two
// binaries, a real InfluxDB, a backend, and Traefik's options pointing at
// that backend and at an address where nothing listens (the dead backend).
type stack struct {
	bridgeBin string
	influx    *influxtest.Server
	traefik   harness.TraefikOptions
}

// startStack starts a stack whose backend startBackend starts.
func startStack(t *testing.T, startBackend func(testing.TB) *harness.Backend) stack {
	t.Helper()
	traefikBin, bridgeBin := harness.NeedTraefik(t), harness.NeedBridge(t)
	influx := influxtest.Start(t)
	backend := startBackend(t)
	dead, err := harness.FreeAddr()
	require.NoError(t, err)
	return stack{
		bridgeBin: bridgeBin,
		influx:    influx,
		traefik:   harness.TraefikOptions{Binary: traefikBin, BackendURL: backend.URL, DeadBackendURL: "http://" + dead},
	}
}

// requirePagesIn checks that every page the bridge has read was in format
// (its pages_total self-metric), so a test knows which parser it checked.
func requirePagesIn(t *testing.T, b *harness.Bridge, format string) {
	t.Helper()
	m, err := b.Metrics(t.Context())
	require.NoError(t, err)
	other := map[string]string{"protobuf": "text", "text": "protobuf"}[format]
	require.Positive(t, m.Sum(selfPrefix+"_pages_total", map[string]string{"format": format}), "pages in %s", format)
	require.Zero(t, m.Sum(selfPrefix+"_pages_total", map[string]string{"format": other}), "pages in %s", other)
}
