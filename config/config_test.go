package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	require.NoError(t, c.Validate())
}

func TestValidateNamesTheKey(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no urls", func(c *Config) { c.Traefik.URLs = nil }, "traefik.urls: at least one URL"},
		{"url scheme", func(c *Config) { c.Traefik.URLs = []string{"ftp://x/metrics"} }, "traefik.urls[0]: "},
		{"url without host", func(c *Config) { c.Traefik.URLs = []string{"http:///metrics"} }, "traefik.urls[0]: "},
		{"credentials in url", func(c *Config) { c.Traefik.URLs = []string{"http://u:secretpw@x/metrics"} }, "traefik.urls[0]: "},
		{"second url", func(c *Config) { c.Traefik.URLs = []string{"http://a/metrics", "b"} }, "traefik.urls[1]: "},
		{"interval zero", func(c *Config) { c.Traefik.Interval = 0 }, "traefik.interval: must be positive"},
		{"timeout above interval", func(c *Config) { c.Traefik.Timeout = 11 * time.Second }, "traefik.timeout: "},
		{"max_body zero", func(c *Config) { c.Traefik.MaxBody = 0 }, "traefik.max_body: "},
		{"series_ttl below interval", func(c *Config) { c.Traefik.SeriesTTL = time.Second }, "traefik.series_ttl: "},
		{"token and password", func(c *Config) { c.Traefik.BearerToken = "t"; c.Traefik.Username = "u" }, "traefik.bearer_token: "},
		{"influx url", func(c *Config) { c.InfluxDB.URL = "udp://x:8089" }, "influxdb.url: "},
		{"database empty", func(c *Config) { c.InfluxDB.Database = "" }, "influxdb.database: is required"},
		{"precision unknown", func(c *Config) { c.InfluxDB.Precision = "h" }, "influxdb.precision: must be one of"},
		{"precision as coarse as interval", func(c *Config) { c.Traefik.Interval = time.Second; c.Traefik.Timeout = time.Second }, "influxdb.precision: \"s\" is not finer"},
		{"consistency", func(c *Config) { c.InfluxDB.Consistency = "most" }, "influxdb.consistency: "},
		{"gzip level zero", func(c *Config) { c.InfluxDB.GzipLevel = 0 }, "influxdb.gzip_level: "},
		{"gzip level ten", func(c *Config) { c.InfluxDB.GzipLevel = 10 }, "influxdb.gzip_level: "},
		{"influx timeout", func(c *Config) { c.InfluxDB.Timeout = 0 }, "influxdb.timeout: "},
		{"schema", func(c *Config) { c.Schema = "graphite" }, "schema: must be one of"},
		{"include pattern", func(c *Config) { c.Metrics.Include = []string{"traefik_["} }, "metrics.include: bad pattern"},
		{"exclude pattern", func(c *Config) { c.Metrics.Exclude = []string{"["} }, "metrics.exclude: bad pattern"},
		{"empty tag value", func(c *Config) { c.Tags = map[string]string{"env": ""} }, "tags: empty tag key or value"},
		{"newline in tag", func(c *Config) { c.Tags = map[string]string{"env": "a\nb"} }, "tags: "},
		{"instance equals host tag", func(c *Config) { c.InstanceTag = "host" }, "instance_tag: must differ"},
		{"batch lines", func(c *Config) { c.Batch.MaxLines = 0 }, "batch.max_lines: "},
		{"batch bytes", func(c *Config) { c.Batch.MaxBytes = 100 }, "batch.max_bytes: "},
		{"buffer below batch", func(c *Config) { c.Buffer.MaxBytes = MiB }, "buffer.max_bytes: must be at least batch.max_bytes"},
		{"traefik gzip", func(c *Config) { c.Traefik.Gzip = "yes" }, "traefik.gzip: "},
		{"traefik format", func(c *Config) { c.Traefik.Format = "openmetrics" }, "traefik.format: "},
		{"traefik format protobuf", func(c *Config) { c.Traefik.Format = "protobuf" }, "traefik.format: must be auto or text"},
		{"fsync", func(c *Config) { c.Buffer.Fsync = "never" }, "buffer.fsync: "},
		{"fsync interval", func(c *Config) { c.Buffer.Fsync = "interval"; c.Buffer.FsyncInterval = 0 }, "buffer.fsync_interval: "},
		{"min backoff", func(c *Config) { c.Retry.MinBackoff = 0 }, "retry.min_backoff: "},
		{"max below min backoff", func(c *Config) { c.Retry.MaxBackoff = time.Millisecond }, "retry.max_backoff: "},
		{"self metrics prefix", func(c *Config) { c.SelfMetrics.Measurement = "" }, "self_metrics.measurement_prefix: "},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, "log.level: "},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format: "},
		{"shutdown grace", func(c *Config) { c.ShutdownGrace = -time.Second }, "shutdown_grace: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			err := c.Validate()
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tt.want), "got %q, want prefix %q", err, tt.want)
			require.NotContains(t, err.Error(), "secretpw")
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"dns url", func(c *Config) { c.Traefik.URLs = []string{"dns+http://traefik-headless:9100/metrics"} }},
		{"https influx", func(c *Config) { c.InfluxDB.URL = "https://influx.example:8086" }},
		{"ms precision with a 1s interval", func(c *Config) {
			c.InfluxDB.Precision = "ms"
			c.Traefik.Interval, c.Traefik.Timeout = time.Second, time.Second
		}},
		{"self metrics off without a prefix", func(c *Config) { c.SelfMetrics.Write = false; c.SelfMetrics.Measurement = "" }},
		{"no host nor instance tag", func(c *Config) { c.HostTag, c.InstanceTag = "", "" }},
		{"upper-case log level", func(c *Config) { c.Log.Level = "DEBUG" }},
		{"shutdown grace zero", func(c *Config) { c.ShutdownGrace = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			require.NoError(t, c.Validate())
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		bad  bool
	}{
		{in: "256MiB", want: 256 << 20},
		{in: "4MB", want: 4_000_000},
		{in: "512k", want: 512 << 10},
		{in: "1GiB", want: 1 << 30},
		{in: "1.5KiB", want: 1536},
		{in: "1048576", want: 1 << 20},
		{in: " 10 mib ", want: 10 << 20},
		{in: "100B", want: 100},
		{in: "", bad: true},
		{in: "MiB", bad: true},
		{in: "-1MiB", bad: true},
		{in: "12XB", bad: true},
		{in: "1e30GiB", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestSizeString(t *testing.T) {
	for in, want := range map[Size]string{
		0: "0B", 100: "100B", KiB: "1KiB", 1536: "1536B", 256 * MiB: "256MiB", 3 * GiB: "3GiB", 4_000_000: "4000000B",
	} {
		t.Run(want, func(t *testing.T) {
			require.Equal(t, want, in.String())
			back, err := ParseSize(in.String())
			require.NoError(t, err)
			require.Equal(t, in, back, "String must read back")
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const pw = "hunter2-secret"
	s := Secret(pw)
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("x", "password", s)
	var jsonLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("x", "password", s)
	y, err := yaml.Marshal(struct{ P Secret }{s})
	require.NoError(t, err)
	j, err := json.Marshal(struct{ P Secret }{s})
	require.NoError(t, err)

	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%+v": fmt.Sprintf("%+v", struct{ P Secret }{s}),
		"%#v": fmt.Sprintf("%#v", s), "slog text": logBuf.String(), "slog json": jsonLog.String(),
		"yaml": string(y), "json": string(j),
	} {
		t.Run(name, func(t *testing.T) {
			require.NotContains(t, out, pw)
			require.Contains(t, out, "redacted") // JSON escapes the angle brackets
		})
	}
	require.Equal(t, pw, string(s), "the value itself stays usable")
	require.Empty(t, Secret("").String(), "an unset secret prints as unset")
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.InfluxDB.Password = "p1-secret"
	c.Traefik.Password = "p2-secret"
	c.Traefik.BearerToken = "t-secret"
	c.Traefik.Headers = map[string]string{"Authorization": "Bearer h-secret", "X-Scope": "team"}
	r := c.Redacted()
	out, err := yaml.Marshal(r)
	require.NoError(t, err)
	require.NotContains(t, string(out), "secret")
	require.Equal(t, "team", r.Traefik.Headers["X-Scope"])
	require.Equal(t, Secret("p1-secret"), c.InfluxDB.Password, "the original is untouched")
	require.Equal(t, "Bearer h-secret", c.Traefik.Headers["Authorization"], "the original map is untouched")
}

func TestRedact(t *testing.T) {
	require.Equal(t, "https://u:xxxxx@h:8086/x", Redact("https://u:pw@h:8086/x"))
	require.Equal(t, "https://h:8086", Redact("https://h:8086"))
}

func TestPrecisionDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"s": time.Second, "ms": time.Millisecond, "us": time.Microsecond, "u": time.Microsecond, "ns": time.Nanosecond, "n": time.Nanosecond, "h": 0, "": 0} {
		t.Run(in, func(t *testing.T) { require.Equal(t, want, PrecisionDuration(in)) })
	}
}
