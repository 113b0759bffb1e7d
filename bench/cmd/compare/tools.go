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
	// Env is added to the inherited environment.
	Env []string
}

// Names accepted by -tools.
const (
	toolBridge         = "bridge"          // the bridge, traefik schema (its default)
	toolBridgeTelegraf = "bridge-telegraf" // the bridge, telegraf schema: Telegraf's output shape
	toolTelegraf       = "telegraf"
)

func (t tool) isTelegraf() bool { return t.Name == toolTelegraf }

// runSetup is what every tool in a run shares, so the comparison is fair:
// same page, same interval, same compression, same batch size.
type runSetup struct {
	PageURL   string
	InfluxURL string
	Interval  time.Duration
	Gzip      bool
	BatchSize int
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
	} else {
		cfgPath = filepath.Join(s.Dir, t.Name+".yaml")
		body = bridgeConfig(s, t.Schema)
		args = []string{"--config", cfgPath}
	}
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		return nil, nil, err
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
