package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/e2e/harness"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/grafana"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

// dashboardIntervals are the $__interval values the boards are queried
// with: the scrape interval (what Grafana uses when the data source's minimum
// interval is set to it, as examples/grafana/provisioning does for the
// default 10s) and a coarser one, so no total depends on how the points fall
// into buckets.
var dashboardIntervals = []time.Duration{time.Second, 5 * time.Second}

// TestDashboards fills InfluxDB from a real Traefik through the bridge
// (schema traefik, its own metrics on, as examples/bridge/sidecar.yaml has
// it), then runs every query of both example dashboards with Grafana's macros
// and variables filled in: the variables with the values their own queries
// list, with "All", and with each value alone. Every panel must get rows
// (but the retries panel: Traefik v3 exports no retries), and what each
// overview panel shows must be what Traefik counted: requests, status
// classes, bytes, TLS versions and reloads over the window, latency series,
// the 5xx ratio, open connections, backends up and certificate expiry at its
// end. The health board must show what the run was: no failures, nothing
// dropped, one scrape a second.
func TestDashboards(t *testing.T) {
	// A backend that also answers WebSocket upgrades: Traefik counts such a
	// connection with code 0, and the status-class panel must show it too.
	st := startStack(t, harness.StartWebSocketBackend)
	bridgeBin, influx := st.bridgeBin, st.influx
	// A copy of dynamic.yml, so the test can change it and Traefik reloads.
	dynamic := filepath.Join(t.TempDir(), "dynamic.yml")
	original, err := os.ReadFile(examplePath(t, "traefik", "dynamic.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dynamic, original, 0o644))
	opts := st.traefik
	opts.DynamicConfig = dynamic
	tr := harness.StartTraefik(t, opts)
	ctx := t.Context()

	const db = "e2e_dashboards"
	require.NoError(t, influx.CreateDatabase(ctx, db))
	from := time.Now().Add(-time.Second)
	b := harness.StartBridge(t, harness.BridgeOptions{
		Binary: bridgeBin,
		Config: examplePath(t, "bridge", "sidecar.yaml"),
		Env:    bridgeEnv(t, influx, db, "traefik", tr),
		Name:   "bridge-dashboards",
	})
	require.NoError(t, b.WaitScrapes(ctx, wait, 1, tr.MetricsURL))
	base, err := tr.Metrics(ctx)
	require.NoError(t, err)

	reloadTraefik(t, tr, dynamic, original, base)
	_, err = harness.Send(ctx, tr, harness.Mix(1))
	require.NoError(t, err)
	_, err = harness.SendWebSocket(ctx, tr, "/api/chat/websocket", 2)
	require.NoError(t, err)
	final := settle(t, []*harness.Traefik{tr}, []*harness.Bridge{b})[0]
	// The health board's rates are derivatives between buckets: let the
	// bridge write its own metrics over a few of the widest.
	for time.Since(from) < 3*slices.Max(dashboardIntervals) {
		require.NoError(t, b.WaitScrapes(ctx, wait, 1, tr.MetricsURL))
	}
	// Stopped, the bridge has flushed everything and writes nothing more:
	// every query below sees the same data.
	require.NoError(t, b.Stop())
	to := time.Now()

	overview := loadBoard(t, "traefik-overview.json")
	health := loadBoard(t, "bridge-health.json")
	traefik := counts{base: base, final: final}

	// What the variable queries must list: the bridge's host, and the
	// entrypoints and services that had requests (Traefik's metrics
	// entrypoint has no routers, so it has none).
	wantValues := map[string][]string{
		"host":       {hostName},
		"entrypoint": traefik.moved("traefik_entrypoint_requests_total", "entrypoint"),
		"service":    traefik.moved("traefik_service_requests_total", "service"),
	}
	require.Equal(t, []string{"web", "websecure"}, wantValues["entrypoint"])
	require.Subset(t, wantValues["service"], []string{"api-svc@file", "dead-svc@file"})

	for _, interval := range dashboardIntervals {
		t.Run(interval.String(), func(t *testing.T) {
			for _, bd := range []*board{overview, health} {
				t.Run("variables of "+bd.file, func(t *testing.T) {
					// As Grafana loads a board: each variable's query with the
					// variables before it set, to All and to the real values.
					for _, sel := range []map[string]string{allOf(bd), everyValue(bd, wantValues)} {
						vars := grafana.Vars{From: from, To: to, Interval: interval, Values: sel}
						for _, v := range bd.variables {
							text, err := grafana.Expand(v.Text, vars)
							require.NoError(t, err)
							got := tagValues(t, influx, db, text)
							require.Equal(t, wantValues[strings.TrimPrefix(v.Source, "variable ")], got, "%s:\n%s", v.Source, text)
						}
					}
				})
			}

			selections := []selection{
				{name: "All", values: allOf(overview)},
				{name: "every value", values: everyValue(overview, wantValues), only: wantValues},
			}
			for _, v := range []string{"entrypoint", "service"} {
				for _, value := range wantValues[v] {
					values := allOf(overview)
					values[v] = grafana.RegexValue(value)
					selections = append(selections, selection{
						name: v + "=" + value, values: values, only: map[string][]string{v: {value}}, single: true,
					})
				}
			}
			for _, sel := range selections {
				t.Run("overview "+sel.name, func(t *testing.T) {
					var rows func(string) bool
					if !sel.single {
						rows = traefik.feeds
					}
					answers := overview.run(t, influx, db, grafana.Vars{From: from, To: to, Interval: interval, Values: sel.values}, rows)
					checkOverview(t, answers, traefik, sel, interval, to)
				})
			}
			for _, sel := range []selection{
				{name: "All", values: allOf(health)},
				{name: "every value", values: everyValue(health, wantValues)},
			} {
				t.Run("bridge health "+sel.name, func(t *testing.T) {
					answers := health.run(t, influx, db, grafana.Vars{From: from, To: to, Interval: interval, Values: sel.values},
						func(string) bool { return true })
					checkHealth(t, answers, tr.MetricsURL)
				})
			}
		})
	}
}

// reloadTraefik changes Traefik's dynamic configuration (a middleware no
// router uses, so no counter moves) and waits until Traefik has applied it:
// its reload counter went up and the health-checked server is up again. The
// file is replaced by a rename, so Traefik never reads half of it.
func reloadTraefik(t *testing.T, tr *harness.Traefik, dynamic string, original []byte, base harness.Samples) {
	t.Helper()
	changed := strings.Replace(string(original), "  middlewares:\n",
		"  middlewares:\n    e2e-reload:\n      headers:\n        customResponseHeaders:\n          X-E2E: reloaded\n", 1)
	require.NotEqual(t, string(original), changed, "dynamic.yml has no http.middlewares section")
	tmp := dynamic + ".new"
	require.NoError(t, os.WriteFile(tmp, []byte(changed), 0o644))
	require.NoError(t, os.Rename(tmp, dynamic))
	before := base.Sum("traefik_config_reloads_total", nil)
	deadline := time.Now().Add(wait)
	for {
		s, err := tr.Metrics(t.Context())
		require.NoError(t, err)
		if s.Sum("traefik_config_reloads_total", nil) > before && s.Sum("traefik_service_server_up", nil) >= 1 {
			return
		}
		require.True(t, time.Now().Before(deadline), "Traefik did not reload %s within %s", dynamic, wait)
		time.Sleep(100 * time.Millisecond)
	}
}

// board is one dashboard file and its queries.
type board struct {
	file      string
	dashboard *grafana.Dashboard
	variables []grafana.Query
	panels    []grafana.Query
}

func loadBoard(t *testing.T, file string) *board {
	t.Helper()
	d, err := grafana.Load(examplePath(t, "grafana", "dashboards", file))
	require.NoError(t, err)
	queries, err := d.Queries()
	require.NoError(t, err)
	bd := &board{file: file, dashboard: d}
	for _, q := range queries {
		if strings.HasPrefix(q.Source, "variable ") {
			bd.variables = append(bd.variables, q)
		} else {
			bd.panels = append(bd.panels, q)
		}
	}
	require.NotEmpty(t, bd.panels)
	return bd
}

// allOf sets every query variable to its All value, as Grafana does when All
// is selected and the variable has a custom all value.
func allOf(bd *board) map[string]string {
	out := map[string]string{}
	for _, v := range bd.dashboard.Templating.List {
		if v.Type == "query" {
			out[v.Name] = v.AllValue
		}
	}
	return out
}

// everyValue sets every query variable to all of its values ticked one by
// one: Grafana's regex alternation of the escaped values.
func everyValue(bd *board, values map[string][]string) map[string]string {
	out := map[string]string{}
	for _, v := range bd.dashboard.Templating.List {
		if v.Type == "query" {
			out[v.Name] = grafana.RegexValue(values[v.Name]...)
		}
	}
	return out
}

// tagValues runs a SHOW TAG VALUES query and returns the values, sorted.
func tagValues(t *testing.T, srv *influxtest.Server, db, q string) []string {
	t.Helper()
	series, err := srv.Query(t.Context(), db, q)
	require.NoError(t, err, q)
	var out []string
	for _, s := range series {
		i := slices.Index(s.Columns, "value")
		require.GreaterOrEqual(t, i, 0, "%s: columns %v", q, s.Columns)
		for _, row := range s.Values {
			out = append(out, fmt.Sprint(row[i]))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// panelAnswer is what one panel query returned: for each series (named by
// its tags, "k=v,...", "" for none) the non-null values of its value
// columns, in time order.
type panelAnswer struct {
	text   string
	series map[string][]map[string]float64
}

// run expands and runs every panel query of the board. With requireRows,
// each query for which it says true must return at least one non-null value,
// as a panel that shows something does, and every other query none.
func (bd *board) run(t *testing.T, srv *influxtest.Server, db string, vars grafana.Vars, requireRows func(query string) bool) map[string]panelAnswer {
	t.Helper()
	out := map[string]panelAnswer{}
	for _, q := range bd.panels {
		text, err := grafana.Expand(q.Text, vars)
		require.NoError(t, err, q.Source)
		series, err := srv.Query(t.Context(), db, text)
		require.NoError(t, err, "influxd refused %s:\n%s", q.Source, text)
		a := panelAnswer{text: text, series: map[string][]map[string]float64{}}
		values := 0
		for _, s := range series {
			key := tagString(s.Tags)
			for _, row := range s.Values {
				r := map[string]float64{}
				for i, col := range s.Columns {
					n, ok := row[i].(json.Number)
					if col == "time" || !ok {
						continue
					}
					f, err := n.Float64()
					require.NoError(t, err)
					r[col] = f
				}
				if len(r) > 0 {
					a.series[key] = append(a.series[key], r)
					values++
				}
			}
		}
		if requireRows != nil {
			if requireRows(text) {
				require.NotZero(t, values, "%s: no rows with a value:\n%s", q.Source, text)
			} else {
				require.Zero(t, values, "%s: rows from nowhere:\n%s", q.Source, text)
			}
		}
		out[q.Source] = a
	}
	return out
}

func tagString(tags map[string]string) string {
	kv := make([]string, 0, len(tags))
	for k, v := range tags {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

// answer finds the answer of one target of the panel titled panel.
func answer(t *testing.T, answers map[string]panelAnswer, panel, refID string) panelAnswer {
	t.Helper()
	for src, a := range answers {
		if strings.Contains(src, fmt.Sprintf("%q", panel)) && strings.HasSuffix(src, " target "+refID) {
			return a
		}
	}
	t.Fatalf("no target %s in panel %q", refID, panel)
	return panelAnswer{}
}

// total is what a rate panel's series add up to over the window: each value
// (per second) times the bucket length. Series that add up to zero are left
// out, as a counter that did not move has no point.
func (a panelAnswer) total(col string, interval time.Duration) map[string]float64 {
	out := map[string]float64{}
	for key, rows := range a.series {
		var sum float64
		for _, r := range rows {
			sum += r[col] * interval.Seconds()
		}
		if sum != 0 {
			out[key] = sum
		}
	}
	return out
}

// last is each series' value in its last bucket: what a gauge panel ends on.
func (a panelAnswer) last(col string) map[string]float64 {
	out := map[string]float64{}
	for key, rows := range a.series {
		out[key] = rows[len(rows)-1][col]
	}
	return out
}

// column is every value of col across the answer's series.
func (a panelAnswer) column(col string) []float64 {
	var out []float64
	for _, rows := range a.series {
		for _, r := range rows {
			if v, ok := r[col]; ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// selection is one setting of the template variables.
type selection struct {
	name   string
	values map[string]string
	// only limits each variable (by tag) to the values listed; absent means All.
	only map[string][]string
	// single: one value of one variable, so some panels rightly show nothing.
	single bool
}

// matches reports whether a Traefik series is shown with this selection.
// The bridge's host tag is not in Traefik's labels; every selection has it.
func (s selection) matches(labels map[string]string) bool {
	for tag, values := range s.only {
		if v, ok := labels[tag]; ok && !slices.Contains(values, v) {
			return false
		}
	}
	return true
}

// counts reads the ground truth from two reads of Traefik's own endpoint.
type counts struct{ base, final harness.Samples }

// exports reports whether Traefik's endpoint has the family at all.
func (c counts) exports(family string) bool {
	for _, s := range c.final {
		if s.Name == family || s.Name == family+"_count" {
			return true
		}
	}
	return false
}

// fromMeasurement finds the measurement a panel query reads.
var fromMeasurement = regexp.MustCompile(`FROM "([^"]+)"`)

// feeds reports whether a query of the overview can have rows: whether
// Traefik exports the family its measurement carries. Traefik v3 does not
// export traefik_service_retries_total (traefik/traefik#10928), which Traefik
// v2 wrote as traefik.service.retries.total: that panel stays empty, and
// starts being checked by itself if a Traefik exports the family again.
func (c counts) feeds(query string) bool {
	m := fromMeasurement.FindStringSubmatch(query)
	if m == nil {
		return true
	}
	family, ok := harness.TraefikFamily(m[1])
	return !ok || c.exports(family)
}

// increase is the increase of family over the test, summed by the label by
// ("" sums everything into one series named ""), for the series keep accepts.
// Zeros are left out.
func (c counts) increase(family, by string, keep func(map[string]string) bool) map[string]float64 {
	out := map[string]float64{}
	for k, s := range c.final {
		if s.Name != family || !keep(s.Labels) {
			continue
		}
		key := ""
		if by != "" {
			key = by + "=" + s.Labels[by]
		}
		out[key] += s.Value - c.base[k].Value
	}
	maps.DeleteFunc(out, func(_ string, v float64) bool { return v == 0 })
	return out
}

// gauge is the final value of family summed by the label by.
func (c counts) gauge(family, by string, keep func(map[string]string) bool) map[string]float64 {
	out := map[string]float64{}
	for _, s := range c.final {
		if s.Name == family && keep(s.Labels) && !movesOnItsOwn(s) {
			out[by+"="+s.Labels[by]] += s.Value
		}
	}
	return out
}

// moved lists the values of label among the series of family that moved.
func (c counts) moved(family, label string) []string {
	var out []string
	for k := range c.increase(family, label, func(map[string]string) bool { return true }) {
		out = append(out, strings.TrimPrefix(k, label+"="))
	}
	slices.Sort(out)
	return out
}

// requireClose compares a panel's values with Traefik's, series by series;
// query is the panel's query, for the message.
func requireClose(t *testing.T, want, got map[string]float64, query string) {
	t.Helper()
	require.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(got)), "series of\n%s", query)
	for k, v := range want {
		require.InDelta(t, v, got[k], 1e-6, "series %s of\n%s", k, query)
	}
}

// checkOverview compares what the overview's panels show with Traefik's own
// counters, restricted to the selection.
func checkOverview(t *testing.T, answers map[string]panelAnswer, c counts, sel selection, interval time.Duration, to time.Time) {
	shown := sel.matches
	// The status classes are by first digit; the first series of the panel
	// has every code that is not 2xx-5xx (1xx, and 0 for upgraded
	// connections such as WebSockets).
	codeClass := func(class string) func(map[string]string) bool {
		return func(l map[string]string) bool {
			first := ""
			if code := l["code"]; code != "" {
				first = code[:1]
			}
			if class == "other" {
				return shown(l) && !strings.Contains("2345", first)
			}
			return shown(l) && first == class
		}
	}
	rates := []struct {
		panel, target, family, by string
		keep                      func(map[string]string) bool
	}{
		{"Requests per second by entrypoint", "A", "traefik_entrypoint_requests_total", "entrypoint", shown},
		{"Requests per second by service", "A", "traefik_service_requests_total", "service", shown},
		{"Requests per second by status class", "A", "traefik_entrypoint_requests_total", "", codeClass("other")},
		{"Requests per second by status class", "B", "traefik_entrypoint_requests_total", "", codeClass("2")},
		{"Requests per second by status class", "C", "traefik_entrypoint_requests_total", "", codeClass("3")},
		{"Requests per second by status class", "D", "traefik_entrypoint_requests_total", "", codeClass("4")},
		{"Requests per second by status class", "E", "traefik_entrypoint_requests_total", "", codeClass("5")},
		{"Bytes in and out", "A", "traefik_entrypoint_requests_bytes_total", "entrypoint", shown},
		{"Bytes in and out", "B", "traefik_entrypoint_responses_bytes_total", "entrypoint", shown},
		{"Requests per second by TLS version", "A", "traefik_entrypoint_requests_tls_total", "tls_version", shown},
		{"Retries per second by service", "A", "traefik_service_retries_total", "service", shown},
	}
	for _, r := range rates {
		t.Run(r.panel+" "+r.target, func(t *testing.T) {
			a := answer(t, answers, r.panel, r.target)
			want := c.increase(r.family, r.by, r.keep)
			if !sel.single && c.exports(r.family) {
				require.NotEmpty(t, want, "the traffic must move %s", r.family)
			}
			requireClose(t, want, a.total(a.valueColumn(t), interval), a.text)
		})
	}

	t.Run("Config reloads", func(t *testing.T) {
		a := answer(t, answers, "Config reloads", "A")
		// Counted, not a rate; one Traefik, tagged with the bridge's host.
		reloads := c.increase("traefik_config_reloads_total", "", shown)[""]
		require.Positive(t, reloads)
		requireClose(t, map[string]float64{"host=" + hostName: reloads}, a.total(a.valueColumn(t), time.Second), a.text)
	})

	gauges := []struct {
		panel, family, by string
	}{
		{"Open connections by entrypoint", "traefik_open_connections", "entrypoint"},
		{"Backends up by service", "traefik_service_server_up", "service"},
	}
	for _, g := range gauges {
		t.Run(g.panel, func(t *testing.T) {
			a := answer(t, answers, g.panel, "A")
			want := c.gauge(g.family, g.by, shown)
			got := a.last(a.valueColumn(t))
			delete(got, "entrypoint=metrics") // the scrapers' own connections
			require.Equal(t, want, got, "%s", a.text)
		})
	}

	t.Run("Certificate days to expiry", func(t *testing.T) {
		a := answer(t, answers, "Certificate days to expiry", "A")
		want := map[string]float64{}
		for _, s := range c.final {
			if s.Name == "traefik_tls_certs_not_after" {
				// The query takes ${__to:date:seconds}: whole seconds.
				want["cn="+s.Labels["cn"]+",sans="+s.Labels["sans"]] = (s.Value - float64(to.Unix())) / 86400
			}
		}
		require.NotEmpty(t, want)
		requireClose(t, want, a.last("days"), a.text)
	})

	t.Run("Error ratio (5xx / all) by service", func(t *testing.T) {
		a := answer(t, answers, "Error ratio (5xx / all) by service", "A")
		errs := c.increase("traefik_service_requests_total", "service", codeClass("5"))
		seen := map[string]bool{}
		for key, rows := range a.series {
			all := c.increase("traefik_service_requests_total", "service", func(l map[string]string) bool {
				return shown(l) && "service="+l["service"] == key
			})[key]
			for _, r := range rows {
				v := r[a.valueColumn(t)]
				require.True(t, v > 0 && v <= 1, "%s: ratio %v", key, v)
				if errs[key] == all { // only errors: every bucket shows 1
					require.Equal(t, 1.0, v, key)
				}
			}
			seen[key] = true
		}
		// A bucket with 5xx shows a ratio, and only those do.
		for key := range errs {
			require.True(t, seen[key], "%s had 5xx answers but shows no ratio:\n%s", key, a.text)
		}
		require.Len(t, seen, len(errs), "%s", a.text)
	})

	latency := []struct {
		panel, family, by string
		quantiles         []string
	}{
		{"Latency p50 / p95 / p99 by entrypoint", "traefik_entrypoint_request_duration_seconds_count", "entrypoint", []string{"p50", "p95", "p99"}},
		{"Latency p99 by service", "traefik_service_request_duration_seconds_count", "service", []string{"p99"}},
	}
	for _, l := range latency {
		t.Run(l.panel, func(t *testing.T) {
			a := answer(t, answers, l.panel, "A")
			// A series for each histogram that had observations ...
			want := c.increase(l.family, l.by, shown)
			require.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(a.series)), "%s", a.text)
			// ... showing seconds, the quantiles in order.
			for key, rows := range a.series {
				for _, r := range rows {
					prev := 0.0
					for _, q := range l.quantiles {
						require.Contains(t, r, q, key)
						require.GreaterOrEqual(t, r[q], prev, "%s %s: %v", key, q, r)
						require.Less(t, r[q], 30.0, "%s %s: seconds, not milliseconds", key, q)
						prev = r[q]
					}
				}
			}
		})
	}
}

// valueColumn is the one value column of an answer (InfluxDB names it after
// the function, or after its alias); "" when the answer is empty.
func (a panelAnswer) valueColumn(t *testing.T) string {
	t.Helper()
	cols := map[string]bool{}
	for _, rows := range a.series {
		for _, r := range rows {
			for c := range r {
				cols[c] = true
			}
		}
	}
	require.LessOrEqual(t, len(cols), 1, "%s", a.text)
	for c := range cols {
		return c
	}
	return ""
}

// checkHealth checks the health board against what the run was: one
// target scraped every second without a failure, InfluxDB up and answering
// 2xx throughout, nothing dropped, the buffer cap of sidecar.yaml.
func checkHealth(t *testing.T, answers map[string]panelAnswer, target string) {
	for src, a := range answers {
		for key := range a.series {
			require.Contains(t, key, "host="+hostName, "%s", src)
		}
	}
	t.Run("scrapes", func(t *testing.T) {
		a := answer(t, answers, "Scrapes per second by target and result", "A")
		for key, rows := range a.series {
			require.Contains(t, key, "target="+target)
			if !strings.Contains(key, "result=success") {
				for _, r := range rows {
					require.Zero(t, r[a.valueColumn(t)], "%s: a failed scrape", key)
				}
				continue
			}
			var rates []float64
			for _, r := range rows {
				rates = append(rates, r[a.valueColumn(t)])
			}
			require.InDelta(t, 1, median(rates), 0.5, "one scrape a second: %v", rates)
		}
	})
	t.Run("writes", func(t *testing.T) {
		a := answer(t, answers, "Writes per second by answer", "A")
		for key, rows := range a.series {
			var sum float64
			for _, r := range rows {
				sum += r[a.valueColumn(t)]
			}
			if strings.Contains(key, "status_class=2xx") {
				require.Positive(t, sum, key)
			} else {
				require.Zero(t, sum, key)
			}
		}
	})
	zero := []string{"Points dropped per second by reason", "Retries per second", "Samples skipped per second by reason"}
	for _, panel := range zero {
		t.Run(panel, func(t *testing.T) {
			a := answer(t, answers, panel, "A")
			for _, v := range a.column(a.valueColumn(t)) {
				require.Zero(t, v, "%s", a.text)
			}
		})
	}
	t.Run("points written", func(t *testing.T) {
		a := answer(t, answers, "Points written per second", "A")
		require.Positive(t, slices.Max(a.column(a.valueColumn(t))))
	})
	t.Run("durations", func(t *testing.T) {
		for _, panel := range []string{"Scrape duration (mean) by target", "Write duration (mean)"} {
			a := answer(t, answers, panel, "A")
			// A bucket without a scrape (or write) since the previous one
			// divides 0 by 0, which InfluxQL answers with 0.
			values := a.column(a.valueColumn(t))
			for _, v := range values {
				require.True(t, v >= 0 && v < 1, "%s: %v seconds", panel, v)
			}
			require.Positive(t, slices.Max(values), panel)
		}
	})
	t.Run("last values", func(t *testing.T) {
		for _, tt := range []struct {
			panel, target string
			want          float64
		}{
			{"InfluxDB reachable", "A", 1},
			{"Buffer bytes (and cap)", "B", 256 << 20}, // buffer.max_bytes of sidecar.yaml
		} {
			a := answer(t, answers, tt.panel, tt.target)
			for key, v := range a.last(a.valueColumn(t)) {
				require.Equal(t, tt.want, v, "%s %s", tt.panel, key)
			}
		}
		a := answer(t, answers, "Seconds since the last successful scrape", "A")
		for key, v := range a.last(a.valueColumn(t)) {
			// ${__to:date:seconds} is whole seconds, the timestamp is not.
			require.True(t, v > -1 && v < 5, "%s: %v s since the last scrape", key, v)
		}
	})
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
