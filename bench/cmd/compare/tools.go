package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// tool is one program under test and how to configure it.
type tool struct {
	Name   string
	Binary string
	// Schema is the bridge's output schema; empty for Telegraf.
	Schema string
	// Config, when set, is a config file the bridge runs as it is, with only
	// the addresses, paths and password set from the environment (TIB_*):
	// examples/bridge/sidecar.yaml, what a sidecar user deploys.
	Config string
	// Env is added to the inherited environment.
	Env []string
}

// Names accepted by -tools.
const (
	toolBridge         = "bridge"          // the bridge, traefik schema (its default)
	toolBridgeTelegraf = "bridge-telegraf" // the bridge, telegraf schema: Telegraf's output shape
	// toolBridgeShipped is the bridge with the shipped sidecar config: disk
	// buffer fsynced on every scrape with its counter state, HTTPS with a CA
	// file and Basic auth to InfluxDB, self-metrics written, info logs.
	toolBridgeShipped = "bridge-shipped"
	toolTelegraf      = "telegraf"
)

// Credentials the HTTPS receiver requires, and the shipped config names.
const (
	shippedUser     = "traefik"
	shippedPassword = "bench-secret"
)

func (t tool) isTelegraf() bool { return t.Name == toolTelegraf }

// runSetup is what every tool in a run shares, so the comparison is fair:
// same page, same interval, same compression, same batch size.
type runSetup struct {
	PageURL   string
	InfluxURL string
	// InfluxTLSURL is the same receiver over HTTPS with Basic auth, its
	// certificate signed by CAFile.
	InfluxTLSURL string
	CAFile       string
	Interval     time.Duration
	Gzip         bool
	BatchSize    int
	// MaxMetrics is a per-scrape upper bound on lines; Telegraf's buffer
	// (default 10,000 metrics) is raised above it so Telegraf drops nothing.
	MaxMetrics int
	// Listen is the bridge's own HTTP address (health, metrics, pprof).
	Listen string
	// Dir receives the config files and logs of the run.
	Dir string
	// PprofAddr, when set, is where the tool serves net/http/pprof.
	PprofAddr string
}

// command writes the tool's config into s.Dir and returns the command that
// runs it, its stdout and stderr going to a log file there.
func (t tool) command(s runSetup) (*exec.Cmd, *os.File, error) {
	var (
		cfgPath string
		body    string
		args    []string
	)
	if t.isTelegraf() {
		cfgPath = filepath.Join(s.Dir, t.Name+".conf")
		body = telegrafConfig(s)
		args = []string{"--config", cfgPath}
		if s.PprofAddr != "" {
			args = append(args, "--pprof-addr", s.PprofAddr)
		}
	} else if t.Config != "" {
		b, err := os.ReadFile(t.Config)
		if err != nil {
			return nil, nil, err
		}
		cfgPath, body = filepath.Join(s.Dir, t.Name+".yaml"), string(b)
		args = []string{"--config", cfgPath}
	} else {
		cfgPath = filepath.Join(s.Dir, t.Name+".yaml")
		body = bridgeConfig(s, t.Schema)
		args = []string{"--config", cfgPath}
	}
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		return nil, nil, err
	}
	var shippedEnv []string
	if t.Config != "" {
		// A fresh buffer each run: a backlog or counter state left by the
		// previous run would be work this run did not cause.
		bufDir := filepath.Join(s.Dir, t.Name+".buffer")
		if err := os.RemoveAll(bufDir); err != nil {
			return nil, nil, err
		}
		if s.InfluxTLSURL == "" || s.CAFile == "" {
			return nil, nil, fmt.Errorf("%s needs the HTTPS receiver", t.Name)
		}
		prec, _ := precisionFor(s.Interval) // "s", the shipped default, above 1 s
		shippedEnv = []string{
			"TIB_TRAEFIK_URLS=" + s.PageURL,
			"TIB_TRAEFIK_INTERVAL=" + s.Interval.String(),
			"TIB_TRAEFIK_TIMEOUT=" + min(5*time.Second, s.Interval).String(),
			"TIB_INFLUXDB_PRECISION=" + prec,
			"TIB_INFLUXDB_URL=" + s.InfluxTLSURL,
			"TIB_INFLUXDB_TLS_CA_FILE=" + s.CAFile,
			"TIB_INFLUXDB_USERNAME=" + shippedUser,
			"TIB_INFLUXDB_PASSWORD=" + shippedPassword,
			"TIB_BUFFER_DIR=" + bufDir,
			"TIB_LISTEN=" + s.Listen,
		}
	}
	logf, err := os.Create(filepath.Join(s.Dir, t.Name+".log"))
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(t.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Keep TIB_* settings of the caller's shell out of the measured run.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TIB_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, shippedEnv...)
	cmd.Env = append(cmd.Env, t.Env...)
	if s.PprofAddr != "" && !t.isTelegraf() {
		cmd.Env = append(cmd.Env, "BENCH_PPROF_ADDR="+s.PprofAddr)
	}
	return cmd, logf, nil
}

// precisionFor picks the coarsest write precision finer than the interval
// (the bridge refuses one that is not).
func precisionFor(interval time.Duration) (bridge, telegraf string) {
	if interval > time.Second {
		return "s", "1s"
	}
	return "ms", "1ms"
}

func bridgeConfig(s runSetup, schema string) string {
	prec, _ := precisionFor(s.Interval)
	return fmt.Sprintf(`# written by bench/cmd/compare
traefik:
  urls: [%q]
  interval: %s
  timeout: %s
  # Like Telegraf, which always asks for gzip: the same work as Telegraf.
  # The shipped default (auto) asks for none on loopback; bridge-shipped
  # runs that.
  gzip: always
influxdb:
  url: %q
  database: bench
  precision: %s
  gzip: %t
schema: %s
batch:
  max_lines: %d
self_metrics:
  write: false
listen: %q
log:
  level: warn
`, s.PageURL, s.Interval, s.Interval, s.InfluxURL, prec, s.Gzip, schema, s.BatchSize, s.Listen)
}

func telegrafConfig(s runSetup) string {
	_, prec := precisionFor(s.Interval)
	enc := "identity"
	if s.Gzip {
		enc = "gzip"
	}
	buffer := max(10000, 2*s.MaxMetrics)
	return fmt.Sprintf(`# written by bench/cmd/compare
[agent]
  interval = "%s"
  round_interval = false
  collection_jitter = "0s"
  flush_interval = "%s"
  flush_jitter = "0s"
  metric_batch_size = %d
  metric_buffer_limit = %d
  precision = "%s"
  quiet = true

[[inputs.prometheus]]
  urls = [%q]
  metric_version = 1
  timeout = "%s"
  response_timeout = "%s"
  namepass = ["traefik_*"]

[[outputs.influxdb]]
  urls = [%q]
  database = "bench"
  content_encoding = %q
  timeout = "10s"
`, s.Interval, s.Interval, s.BatchSize, buffer, prec, s.PageURL, s.Interval, s.Interval, s.InfluxURL, enc)
}
