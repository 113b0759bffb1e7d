// Command demo shows the bridge at work on one machine without Docker: it
// runs the pinned Traefik from examples/traefik, a backend, an HTTPS InfluxDB
// with authentication and the bridge from examples/bridge/sidecar.yaml, sends
// known traffic, prints what InfluxDB holds next to Traefik's own counters,
// and stops everything it started (also on Ctrl-C).
//
// Run it through examples/demo/run.sh, which installs influxd if missing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/e2e/harness"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

const (
	// backendAddr is where examples/traefik/dynamic.yml's BACKEND_URL points in the demo.
	backendAddr = "127.0.0.1:8081"
	// bridgeListen is the listen address of examples/bridge/sidecar.yaml.
	bridgeListen = "127.0.0.1:9180"
	// interval is shorter than the example's 10s so the demo takes seconds.
	interval = 2 * time.Second
	database = "traefik"
	// The InfluxDB user of examples/bridge/sidecar.yaml; the demo creates it
	// with write access to the database only.
	writerUser     = "traefik"
	writerPassword = "demo-writer-pw"
)

func main() {
	keep := flag.Bool("keep", false, "leave everything running after the report, until Ctrl-C")
	rounds := flag.Int("rounds", 3, "rounds of traffic, one scrape interval apart")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *keep, *rounds); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "demo: interrupted; everything it started is stopped")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, keep bool, rounds int) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "tib-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }

	step("building Traefik %s (cached in e2e/.cache after the first time)", harness.TraefikVersion)
	traefikBin, err := harness.TraefikBinary(ctx, root, out)
	if err != nil {
		return err
	}
	step("building the bridge")
	bridgeBin, err := harness.BuildBridge(ctx, root, work)
	if err != nil {
		return err
	}

	if err := checkPortsFree(filepath.Join(root, "examples", "traefik", "traefik.yml")); err != nil {
		return err
	}

	step("starting InfluxDB (HTTPS, authentication on)")
	influx, err := influxtest.Launch(ctx, influxtest.Options{})
	if err != nil {
		return err
	}
	defer influx.Close()
	if err := influx.CreateDatabase(ctx, database); err != nil {
		return err
	}
	if err := influx.CreateUser(ctx, writerUser, writerPassword, map[string]string{database: "WRITE"}); err != nil {
		return err
	}
	fmt.Fprintf(out, "    %s, database %q, user %q (write only), CA %s\n", influx.URL, database, writerUser, influx.CAFile)

	step("starting the backend on %s", backendAddr)
	backend, err := harness.LaunchBackend(backendAddr)
	if err != nil {
		return fmt.Errorf("%w (the demo uses the fixed ports of examples/traefik/traefik.yml; is another demo running?)", err)
	}
	defer backend.Close()

	step("starting Traefik with examples/traefik/traefik.yml and dynamic.yml")
	tr, err := harness.LaunchTraefik(ctx, harness.TraefikOptions{
		Binary: traefikBin, Root: root, Dir: filepath.Join(work, "traefik"),
		BackendURL: backend.URL, KeepAddresses: true,
	})
	if err != nil {
		return err
	}
	defer tr.Stop()
	fmt.Fprintf(out, "    web %s, websecure %s, metrics %s\n", tr.WebURL, tr.WebSecureURL, tr.MetricsURL)

	step("starting the bridge with examples/bridge/sidecar.yaml")
	bridge, err := harness.LaunchBridge(ctx, harness.BridgeOptions{
		Binary: bridgeBin,
		Config: filepath.Join(root, "examples", "bridge", "sidecar.yaml"),
		Dir:    filepath.Join(work, "bridge"),
		Listen: bridgeListen,
		Env: map[string]string{
			"TIB_INFLUXDB_URL":         influx.URL,
			"TIB_INFLUXDB_PASSWORD":    writerPassword,
			"TIB_INFLUXDB_TLS_CA_FILE": influx.CAFile,
			"TIB_BUFFER_DIR":           filepath.Join(work, "buffer"),
			"TIB_TRAEFIK_INTERVAL":     interval.String(),
			"TIB_TRAEFIK_TIMEOUT":      interval.String(),
			"TIB_INFLUXDB_PRECISION":   "ms",
		},
	})
	if err != nil {
		return err
	}
	defer bridge.Stop()
	fmt.Fprintf(out, "    %s/metrics, scraping every %s\n", bridge.URL, interval)
	if err := bridge.WaitScrapes(ctx, 30*time.Second, 1, tr.MetricsURL); err != nil {
		return err
	}
	before, err := tr.Metrics(ctx)
	if err != nil {
		return err
	}

	mix := harness.Mix(1)
	step("sending %d rounds of %d requests (GET/POST/PUT/DELETE/PATCH/HEAD/PURGE, plain and TLS, 2xx-5xx)", rounds, harness.Count(mix))
	for i := range rounds {
		if _, err := harness.Send(ctx, tr, mix); err != nil {
			return err
		}
		if i < rounds-1 {
			if err := sleep(ctx, interval); err != nil {
				return err
			}
		}
	}

	step("waiting until the bridge has scraped the last request and written it")
	if err := bridge.WaitScrapes(ctx, 30*time.Second, 2, tr.MetricsURL); err != nil {
		return err
	}
	after, err := tr.Metrics(ctx)
	if err != nil {
		return err
	}
	if err := bridge.WaitScrapes(ctx, 30*time.Second, 1, tr.MetricsURL); err != nil {
		return err
	}
	if err := bridge.WaitDrained(ctx, 30*time.Second); err != nil {
		return err
	}
	if err := sleep(ctx, 500*time.Millisecond); err != nil { // the last write's answer
		return err
	}

	mismatches, err := report(ctx, out, influx, before, after)
	if err != nil {
		return err
	}
	if keep {
		step("everything keeps running; Ctrl-C stops it. Try:")
		fmt.Fprintf(out, "    curl -s %s/metrics | grep traefik_service_requests_total\n", tr.MetricsURL)
		fmt.Fprintf(out, "    curl -s %s/metrics | grep traefik_influxdb_bridge_\n", bridge.URL)
		fmt.Fprintf(out, "    curl -s --cacert %s -u %s:%s %s/query --data-urlencode db=%s --data-urlencode 'q=SHOW MEASUREMENTS'\n",
			influx.CAFile, influx.Username, influx.Password, influx.URL, database)
		<-ctx.Done()
	}
	step("stopping the bridge, Traefik, the backend and InfluxDB")
	if mismatches > 0 {
		return fmt.Errorf("%d series differ between InfluxDB and Traefik", mismatches)
	}
	return nil
}

// report prints requests per service and status code as InfluxDB holds them
// next to the increase of Traefik's own counter, and the p95 latency, and
// returns how many rows differ.
func report(ctx context.Context, out io.Writer, influx *influxtest.Server, before, after harness.Samples) (int, error) {
	const countQ = `SELECT sum("count") AS "requests" FROM "traefik.service.requests.total" GROUP BY "service", "code"`
	const p95Q = `SELECT mean("p95") AS "p95", max("p95") AS "max_p95" FROM "traefik.service.request.duration" GROUP BY "service", "code"`
	counts, err := harness.QueryRows(ctx, influx, database, countQ)
	if err != nil {
		return 0, err
	}
	p95s, err := harness.QueryRows(ctx, influx, database, p95Q)
	if err != nil {
		return 0, err
	}
	type row struct {
		influx, traefik, p95, maxP95 float64
		hasP95                       bool
	}
	rows := map[[2]string]*row{}
	get := func(service, code string) *row {
		k := [2]string{service, code}
		if rows[k] == nil {
			rows[k] = &row{}
		}
		return rows[k]
	}
	for _, r := range counts {
		get(r.Tags["service"], r.Tags["code"]).influx = r.Fields["requests"]
	}
	for _, r := range p95s {
		x := get(r.Tags["service"], r.Tags["code"])
		x.p95, x.maxP95, x.hasP95 = r.Fields["p95"], r.Fields["max_p95"], true
	}
	for k, s := range after {
		if s.Name != "traefik_service_requests_total" {
			continue
		}
		if d := s.Value - before[k].Value; d != 0 {
			get(s.Labels["service"], s.Labels["code"]).traefik += d
		}
	}
	keys := make([][2]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})

	fmt.Fprintf(out, "\nRequests per service and status code during the demo\n")
	fmt.Fprintf(out, "  InfluxDB: %s\n  Traefik:  increase of traefik_service_requests_total (read from %s)\n", countQ, "its /metrics")
	fmt.Fprintf(out, "  p95:      %s\n", p95Q)
	fmt.Fprintf(out, "            (per scrape interval, estimated from Traefik's histogram buckets 0.1s, 0.3s, 1.2s, 5s)\n\n")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "service\tcode\tInfluxDB\tTraefik\tmatch\tp95 mean (ms)\tp95 max (ms)\t")
	mismatches := 0
	var total, totalTraefik float64
	for _, k := range keys {
		r := rows[k]
		ok := "yes"
		if r.influx != r.traefik {
			ok = "NO"
			mismatches++
		}
		p95, maxP95 := "-", "-"
		if r.hasP95 {
			p95, maxP95 = fmt.Sprintf("%.1f", r.p95*1000), fmt.Sprintf("%.1f", r.maxP95*1000)
		}
		fmt.Fprintf(w, "%s\t%s\t%g\t%g\t%s\t%s\t%s\t\n", k[0], k[1], r.influx, r.traefik, ok, p95, maxP95)
		total += r.influx
		totalTraefik += r.traefik
	}
	fmt.Fprintf(w, "total\t\t%g\t%g\t\t\t\t\n", total, totalTraefik)
	if err := w.Flush(); err != nil {
		return 0, err
	}
	fmt.Fprintln(out)
	if mismatches == 0 {
		fmt.Fprintf(out, "InfluxDB holds exactly what Traefik counted: %d rows, %g service requests.\n\n", len(keys), total)
	}
	return mismatches, nil
}

// checkPortsFree fails early, and says why, when one of the demo's fixed
// addresses is taken (another demo, a local Traefik): Traefik itself would
// only log the error and run without that entrypoint.
func checkPortsFree(staticConfig string) error {
	eps, err := harness.EntrypointAddresses(staticConfig)
	if err != nil {
		return err
	}
	addrs := []string{backendAddr, bridgeListen}
	for _, a := range eps {
		addrs = append(addrs, a)
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("the demo needs %s (examples/traefik/traefik.yml, examples/bridge/sidecar.yaml), but it is taken: %w", a, err)
		}
		ln.Close()
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
