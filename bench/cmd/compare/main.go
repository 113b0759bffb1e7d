// Command compare runs the bridge and Telegraf, one after the other, against
// the same Traefik-shaped pages served on loopback, receives their InfluxDB
// writes on loopback, and prints what each cost in CPU, memory and bytes as
// markdown tables. See BENCHMARKS.md for how it is run and what it found.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

type options struct {
	services []int
	rounds   int
	scrapes  int
	interval time.Duration
	tools    []string
	bridge   string
	telegraf string
	// shippedConfig is the config file of the bridge-shipped tool.
	shippedConfig string
	gzip          bool
	pageGzip      bool
	// pageFormat is "negotiate" (each tool gets the format its Accept header
	// prefers, as from a real Traefik) or "text" (text to every tool).
	pageFormat string
	out        string

	sidecar         bool
	sidecarOnly     bool
	sidecarTools    []string
	sidecarServices int
	sidecarInterval time.Duration
	sidecarDuration time.Duration
	sidecarRounds   int

	smoke bool
	check bool
	perf  bool
	pprof bool
	// bridgeEnv is added to the bridge's environment (GOGC=50, GOMEMLIMIT=...),
	// to show how its memory trades against CPU; Telegraf runs with defaults.
	bridgeEnv []string
}

func main() {
	var o options
	var services, tools, bridgeEnv, sidecarTools string
	flag.StringVar(&services, "services", "20,100,500", "comma-separated page sizes, in Traefik services")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds: every tool runs once per size per round; tables show medians")
	flag.IntVar(&o.scrapes, "scrapes", 10, "scrapes per tool run")
	flag.DurationVar(&o.interval, "interval", 2*time.Second, "scrape interval of every tool")
	flag.StringVar(&tools, "tools", "bridge,bridge-telegraf,telegraf", "tools to run: bridge, bridge-telegraf, bridge-shipped, telegraf")
	flag.StringVar(&o.bridge, "bridge", ".cache/traefik-influxdb-bridge", "bridge binary")
	flag.StringVar(&o.shippedConfig, "shipped-config", "../examples/bridge/sidecar.yaml", "config file the bridge-shipped tool runs as it is (addresses, paths and password from TIB_* variables)")
	flag.StringVar(&o.telegraf, "telegraf", ".cache/telegraf", "Telegraf binary (tools/telegraf/build.sh)")
	flag.BoolVar(&o.gzip, "gzip", true, "gzip the InfluxDB writes, on every tool")
	flag.BoolVar(&o.pageGzip, "page-gzip", true, "gzip the page when the scraper asks, as Traefik's promhttp does")
	flag.StringVar(&o.pageFormat, "page-format", "negotiate", "negotiate: answer each tool in the format its Accept header prefers, as Traefik does (Telegraf gets delimited protobuf); text: text to every tool")
	flag.StringVar(&o.out, "out", "", "directory for configs, logs and results.json (default results/<UTC time>)")
	flag.BoolVar(&o.sidecar, "sidecar", false, "also measure the bridge as an idle sidecar")
	flag.BoolVar(&o.sidecarOnly, "sidecar-only", false, "measure only the sidecar")
	flag.StringVar(&sidecarTools, "sidecar-tools", "bridge,bridge-shipped", "tools measured as a sidecar, one after the other: bridge, bridge-shipped, telegraf")
	flag.IntVar(&o.sidecarServices, "sidecar-services", 20, "sidecar page size")
	flag.DurationVar(&o.sidecarInterval, "sidecar-interval", 10*time.Second, "sidecar scrape interval")
	flag.DurationVar(&o.sidecarDuration, "sidecar-duration", 3*time.Minute, "how long the sidecar runs")
	flag.IntVar(&o.sidecarRounds, "sidecar-rounds", 1, "sidecar runs per tool, the tools taking turns; targets are judged on the median share of a core and the highest peak RSS")
	flag.BoolVar(&o.smoke, "smoke", false, "quick check: a tiny page, 3 scrapes at 1s, the bridge (and Telegraf if built); fails if nothing arrives")
	flag.BoolVar(&o.perf, "perf", false, "record each tool's stacks with perf record into the -out directory (profile runs only: sampling perturbs CPU)")
	flag.BoolVar(&o.pprof, "pprof", false, "fetch CPU and heap profiles of each tool into the -out directory (the bridge must be the profiling build of profile.sh)")
	flag.StringVar(&bridgeEnv, "bridge-env", "", "comma-separated KEY=VALUE added to the bridge's environment, e.g. GOGC=50")
	flag.BoolVar(&o.check, "check", false, "exit 1 when a target of issue 5 is missed")
	flag.Parse()

	var err error
	if o.services, err = parseInts(services); err != nil {
		fatal(err)
	}
	if o.pageFormat != "negotiate" && o.pageFormat != formatText {
		fatal(fmt.Errorf("bad -page-format %q (want negotiate or text)", o.pageFormat))
	}
	o.tools = strings.Split(tools, ",")
	o.sidecarTools = strings.Split(sidecarTools, ",")
	if bridgeEnv != "" {
		o.bridgeEnv = strings.Split(bridgeEnv, ",")
	}
	if o.smoke {
		o.services, o.rounds, o.scrapes, o.interval = []int{5}, 1, 3, time.Second
		o.tools = []string{toolBridge, toolBridgeTelegraf, toolBridgeShipped}
		if _, err := os.Stat(o.telegraf); err == nil {
			o.tools = append(o.tools, toolTelegraf)
		}
	}
	if o.out == "" {
		o.out = filepath.Join("results", time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, o)
	if err != nil {
		fatal(err)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (bool, error) {
	var toolList []tool
	for _, name := range o.tools {
		t, err := newTool(strings.TrimSpace(name), o)
		if err != nil {
			return false, err
		}
		toolList = append(toolList, t)
	}
	h, shutdown, err := startHarness(o.out)
	if err != nil {
		return false, err
	}
	h.perf, h.pprof = o.perf, o.pprof
	h.pages.negotiate = o.pageFormat == "negotiate"
	defer shutdown()
	printMachine(os.Stdout)
	fmt.Printf("\nPages %v services, %d scrapes per run every %s, %d rounds, write gzip %t, page gzip %t, page format %s, tools %s, bridge env %q; logs in %s\n",
		o.services, o.scrapes, o.interval, o.rounds, o.gzip, o.pageGzip, o.pageFormat, strings.Join(o.tools, ","), o.bridgeEnv, o.out)

	var results []result
	if !o.sidecarOnly {
		for _, n := range o.services {
			book := newPageBook(n, o.pageGzip)
			for r := 0; r < o.rounds; r++ {
				// Rotate the order each round so no tool always runs first.
				for i := range toolList {
					t := toolList[(i+r)%len(toolList)]
					res, err := h.runTool(ctx, t, book, o.scrapes, o.interval, o.gzip, r)
					if err != nil {
						return false, err
					}
					fmt.Fprintf(os.Stderr, "%s services=%d round=%d: scrapes=%d (gzipped %d, protobuf %d, failed %d) cpu=%s steady/scrape=%s vmhwm=%.1fMiB lines=%d wire=%dB %s\n",
						t.Name, n, r, res.Scrapes, res.ScrapesGzipped, res.ScrapesProtobuf, res.FailedScrapes, res.Usage.CPU.Round(time.Millisecond), res.SteadyCPU.Round(time.Millisecond),
						mib(res.PeakRSS), res.Writes.Lines, res.Writes.WireBytes, res.Usage.ExitErr)
					results = append(results, res)
				}
			}
		}
	}
	var sides []sidecarResult
	if o.sidecar || o.sidecarOnly {
		var sideTools []tool
		for _, name := range o.sidecarTools {
			t, err := newTool(strings.TrimSpace(name), o)
			if err != nil {
				return false, err
			}
			sideTools = append(sideTools, t)
		}
		for r := 0; r < max(o.sidecarRounds, 1); r++ {
			for i := range sideTools {
				t := sideTools[(i+r)%len(sideTools)]
				fmt.Fprintf(os.Stderr, "sidecar %s round %d: %d services every %s for %s\n", t.Name, r, o.sidecarServices, o.sidecarInterval, o.sidecarDuration)
				s, err := h.runSidecar(ctx, t, newPageBook(o.sidecarServices, o.pageGzip), o.sidecarInterval, o.sidecarDuration, r)
				if err != nil {
					return false, err
				}
				sides = append(sides, s)
			}
		}
	}

	if err := writeJSON(filepath.Join(o.out, "results.json"), struct {
		Results []result        `json:"results"`
		Sidecar []sidecarResult `json:"sidecar,omitempty"`
	}{results, sides}); err != nil {
		return false, err
	}
	rows := summarize(results)
	printTables(os.Stdout, rows, sides)
	verdicts := targets(rows, sides)
	printVerdicts(os.Stdout, verdicts)

	ok := true
	if o.smoke {
		ok = smokeOK(os.Stdout, results, o.gzip)
	}
	if o.check {
		for _, v := range verdicts {
			ok = ok && v.Met
		}
	}
	return ok, nil
}

func newTool(name string, o options) (tool, error) {
	switch name {
	case toolBridge:
		return tool{Name: name, Binary: o.bridge, Schema: "traefik", Env: o.bridgeEnv}, checkBinary(o.bridge)
	case toolBridgeTelegraf:
		return tool{Name: name, Binary: o.bridge, Schema: "telegraf", Env: o.bridgeEnv}, checkBinary(o.bridge)
	case toolBridgeShipped:
		if _, err := os.Stat(o.shippedConfig); err != nil {
			return tool{}, fmt.Errorf("-shipped-config: %w", err)
		}
		return tool{Name: name, Binary: o.bridge, Schema: "traefik", Config: o.shippedConfig, Env: o.bridgeEnv}, checkBinary(o.bridge)
	case toolTelegraf:
		return tool{Name: name, Binary: o.telegraf}, checkBinary(o.telegraf)
	}
	return tool{}, fmt.Errorf("unknown tool %q (want bridge, bridge-telegraf, bridge-shipped or telegraf)", name)
}

func checkBinary(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("binary %s is not executable", path)
	}
	return nil
}

// startHarness starts the page server and the InfluxDB stand-in on loopback:
// the stand-in over plain HTTP, and over HTTPS with Basic auth for the
// shipped config, its CA written into out.
func startHarness(out string) (*harness, func(), error) {
	h := &harness{pages: &pageServer{}, recv: &receiver{}, outDir: out}
	var servers []*http.Server
	shutdown := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(ctx)
		}
	}
	serve := func(handler http.Handler, certFile, keyFile string) (string, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		s := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		// HTTP/1.1 only, as InfluxDB 1.x serves HTTPS: its tls.Config offers
		// no ALPN, so clients never get HTTP/2 from it.
		s.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		servers = append(servers, s)
		if certFile == "" {
			go func() { _ = s.Serve(l) }()
			return "http://" + l.Addr().String(), nil
		}
		go func() { _ = s.ServeTLS(l, certFile, keyFile) }()
		return "https://" + l.Addr().String(), nil
	}
	pki := filepath.Join(out, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return nil, nil, err
	}
	caFile, certFile, keyFile, err := influxtest.WriteServerPKI(pki)
	if err != nil {
		return nil, nil, err
	}
	h.caFile = caFile
	pageURL, err := serve(h.pages, "", "")
	if err == nil {
		h.influxURL, err = serve(h.recv, "", "")
	}
	if err == nil {
		h.influxTLSURL, err = serve(basicAuth(h.recv, shippedUser, shippedPassword), certFile, keyFile)
	}
	if err != nil {
		shutdown()
		return nil, nil, err
	}
	h.pageURL = pageURL + "/metrics"
	return h, shutdown, nil
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad size %q in -services", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "compare:", err)
	os.Exit(2)
}
