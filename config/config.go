// Package config holds the bridge's configuration as plain structs: the keys of
// the YAML file, their built-in defaults and the checks that name a bad key.
// Loading (file, environment, flags) is the job of the command, not of this package.
package config

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
)

// Config is the whole configuration. Its mapstructure/yaml keys are the keys of
// config.example.yaml and of the TIB_* environment variables.
type Config struct {
	Traefik     Traefik           `mapstructure:"traefik" yaml:"traefik"`
	InfluxDB    InfluxDB          `mapstructure:"influxdb" yaml:"influxdb"`
	Schema      string            `mapstructure:"schema" yaml:"schema"`
	Metrics     Metrics           `mapstructure:"metrics" yaml:"metrics"`
	Tags        map[string]string `mapstructure:"tags" yaml:"tags"`
	HostTag     string            `mapstructure:"host_tag" yaml:"host_tag"`
	InstanceTag string            `mapstructure:"instance_tag" yaml:"instance_tag"`
	Batch       Batch             `mapstructure:"batch" yaml:"batch"`
	Buffer      Buffer            `mapstructure:"buffer" yaml:"buffer"`
	Retry       Retry             `mapstructure:"retry" yaml:"retry"`
	SelfMetrics SelfMetrics       `mapstructure:"self_metrics" yaml:"self_metrics"`
	Listen      string            `mapstructure:"listen" yaml:"listen"`
	Log         Log               `mapstructure:"log" yaml:"log"`
	// ShutdownGrace bounds the final flush after SIGINT/SIGTERM.
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace" yaml:"shutdown_grace"`
}

// Traefik says where and how to scrape.
type Traefik struct {
	URLs      []string          `mapstructure:"urls" yaml:"urls"`
	Interval  time.Duration     `mapstructure:"interval" yaml:"interval"`
	Timeout   time.Duration     `mapstructure:"timeout" yaml:"timeout"`
	MaxBody   Size              `mapstructure:"max_body" yaml:"max_body"`
	Gzip      string            `mapstructure:"gzip" yaml:"gzip"`     // GzipAuto, GzipAlways or GzipNever
	Format    string            `mapstructure:"format" yaml:"format"` // FormatAuto or FormatText
	SeriesTTL time.Duration     `mapstructure:"series_ttl" yaml:"series_ttl"`
	MaxSeries int               `mapstructure:"max_series" yaml:"max_series"`
	Headers   map[string]string `mapstructure:"headers" yaml:"headers"`
	Username  string            `mapstructure:"username" yaml:"username"`
	Password  Secret            `mapstructure:"password" yaml:"password"`
	// PasswordFile and BearerTokenFile are read at start; they win over the inline values.
	PasswordFile    string `mapstructure:"password_file" yaml:"password_file"`
	BearerToken     Secret `mapstructure:"bearer_token" yaml:"bearer_token"`
	BearerTokenFile string `mapstructure:"bearer_token_file" yaml:"bearer_token_file"`
	TLS             TLS    `mapstructure:"tls" yaml:"tls"`
}

// InfluxDB says where and how to write.
type InfluxDB struct {
	URL             string        `mapstructure:"url" yaml:"url"`
	Database        string        `mapstructure:"database" yaml:"database"`
	RetentionPolicy string        `mapstructure:"retention_policy" yaml:"retention_policy"`
	Username        string        `mapstructure:"username" yaml:"username"`
	Password        Secret        `mapstructure:"password" yaml:"password"`
	PasswordFile    string        `mapstructure:"password_file" yaml:"password_file"`
	Precision       string        `mapstructure:"precision" yaml:"precision"`
	Consistency     string        `mapstructure:"consistency" yaml:"consistency"`
	Gzip            bool          `mapstructure:"gzip" yaml:"gzip"`
	GzipLevel       int           `mapstructure:"gzip_level" yaml:"gzip_level"`
	Timeout         time.Duration `mapstructure:"timeout" yaml:"timeout"`
	CreateDatabase  bool          `mapstructure:"create_database" yaml:"create_database"`
	TLS             TLS           `mapstructure:"tls" yaml:"tls"`
}

// TLS is a client TLS setup; the zero value verifies against the system roots.
type TLS struct {
	CAFile             string `mapstructure:"ca_file" yaml:"ca_file"`
	CertFile           string `mapstructure:"cert_file" yaml:"cert_file"`
	KeyFile            string `mapstructure:"key_file" yaml:"key_file"`
	ServerName         string `mapstructure:"server_name" yaml:"server_name"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify" yaml:"insecure_skip_verify"`
}

// Metrics selects metric families by glob on the family name.
type Metrics struct {
	Include []string `mapstructure:"include" yaml:"include"`
	Exclude []string `mapstructure:"exclude" yaml:"exclude"`
}

// Batch bounds one write.
type Batch struct {
	MaxLines int  `mapstructure:"max_lines" yaml:"max_lines"`
	MaxBytes Size `mapstructure:"max_bytes" yaml:"max_bytes"`
}

// Buffer bounds what waits to be written. Dir empty keeps it in memory.
type Buffer struct {
	MaxBytes Size   `mapstructure:"max_bytes" yaml:"max_bytes"`
	Dir      string `mapstructure:"dir" yaml:"dir"`
	// Fsync is "always" (each appended batch is synced) or "interval".
	Fsync         string        `mapstructure:"fsync" yaml:"fsync"`
	FsyncInterval time.Duration `mapstructure:"fsync_interval" yaml:"fsync_interval"`
}

// Retry is the backoff between failed writes.
type Retry struct {
	MinBackoff time.Duration `mapstructure:"min_backoff" yaml:"min_backoff"`
	MaxBackoff time.Duration `mapstructure:"max_backoff" yaml:"max_backoff"`
}

// SelfMetrics controls writing the bridge's own metrics into InfluxDB.
type SelfMetrics struct {
	Write       bool   `mapstructure:"write" yaml:"write"`
	Measurement string `mapstructure:"measurement_prefix" yaml:"measurement_prefix"`
}

// Log is the process logger's setup.
type Log struct {
	Level  string `mapstructure:"level" yaml:"level"`
	Format string `mapstructure:"format" yaml:"format"`
}

// Schemas the converter knows.
const (
	SchemaTraefik    = "traefik"
	SchemaPrometheus = "prometheus"
	SchemaTelegraf   = "telegraf"
)

// Values of traefik.gzip.
const (
	// GzipAuto asks for gzip except from a loopback address: compressing
	// costs Traefik more CPU than the bridge's whole scrape, and saves
	// nothing on loopback (BenchmarkPageGzip in bench/pipeline).
	GzipAuto   = "auto"
	GzipAlways = "always"
	GzipNever  = "never"
)

// Values of traefik.format, the exposition format a scrape asks for.
const (
	// FormatAuto prefers the delimited protobuf format, which the bridge
	// parses for less CPU than text, and takes text from a target that
	// answers only that.
	FormatAuto = "auto"
	// FormatText asks for the text format only.
	FormatText = "text"
)

// Default returns the built-in defaults; config.example.yaml must equal them.
func Default() Config {
	return Config{
		Traefik: Traefik{
			URLs:      []string{"http://127.0.0.1:9100/metrics"},
			Interval:  10 * time.Second,
			Timeout:   5 * time.Second,
			MaxBody:   64 * MiB,
			Gzip:      GzipAuto,
			Format:    FormatAuto,
			SeriesTTL: time.Hour,
			MaxSeries: 500000,
			Headers:   map[string]string{},
		},
		InfluxDB: InfluxDB{
			URL:            "http://127.0.0.1:8086",
			Database:       "traefik",
			Precision:      "s",
			Gzip:           true,
			GzipLevel:      5,
			Timeout:        10 * time.Second,
			CreateDatabase: true,
		},
		Schema:        SchemaTraefik,
		Metrics:       Metrics{Include: []string{"traefik_*"}, Exclude: []string{}},
		Tags:          map[string]string{},
		HostTag:       "host",
		InstanceTag:   "instance",
		Batch:         Batch{MaxLines: 5000, MaxBytes: 4 * MiB},
		Buffer:        Buffer{MaxBytes: 256 * MiB, Fsync: "always", FsyncInterval: time.Second},
		Retry:         Retry{MinBackoff: time.Second, MaxBackoff: 60 * time.Second},
		SelfMetrics:   SelfMetrics{Write: true, Measurement: "traefik_influxdb_bridge"},
		Listen:        ":9180",
		Log:           Log{Level: "info", Format: "text"},
		ShutdownGrace: 10 * time.Second,
	}
}

// PrecisionDuration is the time unit of a precision value, or 0 if it is not one.
func PrecisionDuration(p string) time.Duration {
	switch p {
	case "ns", "n":
		return time.Nanosecond
	case "us", "u":
		return time.Microsecond
	case "ms":
		return time.Millisecond
	case "s":
		return time.Second
	}
	return 0
}

// Validate checks every key and names the first bad one.
func (c *Config) Validate() error {
	if len(c.Traefik.URLs) == 0 {
		return fmt.Errorf("traefik.urls: at least one URL is required")
	}
	for i, raw := range c.Traefik.URLs {
		if err := checkURL(raw, "http", "https", "dns+http", "dns+https"); err != nil {
			return fmt.Errorf("traefik.urls[%d]: %w", i, err)
		}
	}
	if c.Traefik.Interval <= 0 {
		return fmt.Errorf("traefik.interval: must be positive, got %s", c.Traefik.Interval)
	}
	if c.Traefik.Timeout <= 0 || c.Traefik.Timeout > c.Traefik.Interval {
		return fmt.Errorf("traefik.timeout: must be positive and at most traefik.interval (%s), got %s", c.Traefik.Interval, c.Traefik.Timeout)
	}
	if c.Traefik.MaxBody == 0 {
		return fmt.Errorf("traefik.max_body: must be positive")
	}
	switch c.Traefik.Gzip {
	case GzipAuto, GzipAlways, GzipNever:
	default:
		return fmt.Errorf("traefik.gzip: must be auto, always or never, got %q", c.Traefik.Gzip)
	}
	switch c.Traefik.Format {
	case FormatAuto, FormatText:
	default:
		return fmt.Errorf("traefik.format: must be auto or text, got %q", c.Traefik.Format)
	}
	if c.Traefik.MaxSeries < 0 {
		return fmt.Errorf("traefik.max_series: must be 0 (no bound) or more, got %d", c.Traefik.MaxSeries)
	}
	if c.Traefik.SeriesTTL < c.Traefik.Interval {
		return fmt.Errorf("traefik.series_ttl: must be at least traefik.interval (%s), got %s", c.Traefik.Interval, c.Traefik.SeriesTTL)
	}
	if c.Traefik.BearerToken != "" && (c.Traefik.Username != "" || c.Traefik.Password != "") {
		return fmt.Errorf("traefik.bearer_token: cannot be combined with traefik.username/password")
	}
	if err := checkURL(c.InfluxDB.URL, "http", "https"); err != nil {
		return fmt.Errorf("influxdb.url: %w", err)
	}
	if c.InfluxDB.Database == "" {
		return fmt.Errorf("influxdb.database: is required")
	}
	prec := PrecisionDuration(c.InfluxDB.Precision)
	if prec == 0 {
		return fmt.Errorf("influxdb.precision: must be one of s, ms, us, ns, got %q", c.InfluxDB.Precision)
	}
	if prec >= c.Traefik.Interval {
		// Two scrapes inside one precision unit would get the same timestamp and
		// InfluxDB keeps only the last point of a series at a timestamp.
		return fmt.Errorf("influxdb.precision: %q is not finer than traefik.interval (%s); points of one series would overwrite each other", c.InfluxDB.Precision, c.Traefik.Interval)
	}
	switch c.InfluxDB.Consistency {
	case "", "any", "one", "quorum", "all":
	default:
		return fmt.Errorf("influxdb.consistency: must be one of any, one, quorum, all, got %q", c.InfluxDB.Consistency)
	}
	if c.InfluxDB.GzipLevel < 1 || c.InfluxDB.GzipLevel > 9 {
		return fmt.Errorf("influxdb.gzip_level: must be 1 (fastest) to 9 (smallest), got %d", c.InfluxDB.GzipLevel)
	}
	if c.InfluxDB.Timeout <= 0 {
		return fmt.Errorf("influxdb.timeout: must be positive, got %s", c.InfluxDB.Timeout)
	}
	switch c.Schema {
	case SchemaTraefik, SchemaPrometheus, SchemaTelegraf:
	default:
		return fmt.Errorf("schema: must be one of traefik, prometheus, telegraf, got %q", c.Schema)
	}
	for _, list := range []struct {
		key      string
		patterns []string
	}{{"metrics.include", c.Metrics.Include}, {"metrics.exclude", c.Metrics.Exclude}} {
		for _, p := range list.patterns {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("%s: bad pattern %q: %w", list.key, p, err)
			}
		}
	}
	for k, v := range c.Tags {
		if k == "" || v == "" {
			return fmt.Errorf("tags: empty tag key or value (%q=%q)", k, v)
		}
		if strings.ContainsAny(k+v, "\n\r") {
			return fmt.Errorf("tags: %q contains a newline", k)
		}
	}
	if c.HostTag != "" && c.HostTag == c.InstanceTag {
		return fmt.Errorf("instance_tag: must differ from host_tag (%q)", c.HostTag)
	}
	if c.Batch.MaxLines <= 0 {
		return fmt.Errorf("batch.max_lines: must be positive, got %d", c.Batch.MaxLines)
	}
	if c.Batch.MaxBytes < 1024 {
		return fmt.Errorf("batch.max_bytes: must be at least 1KiB, got %s", c.Batch.MaxBytes)
	}
	if c.Buffer.MaxBytes < c.Batch.MaxBytes {
		return fmt.Errorf("buffer.max_bytes: must be at least batch.max_bytes (%s), got %s", c.Batch.MaxBytes, c.Buffer.MaxBytes)
	}
	switch c.Buffer.Fsync {
	case "always", "interval":
	default:
		return fmt.Errorf("buffer.fsync: must be always or interval, got %q", c.Buffer.Fsync)
	}
	if c.Buffer.Fsync == "interval" && c.Buffer.FsyncInterval <= 0 {
		return fmt.Errorf("buffer.fsync_interval: must be positive, got %s", c.Buffer.FsyncInterval)
	}
	if c.Retry.MinBackoff <= 0 {
		return fmt.Errorf("retry.min_backoff: must be positive, got %s", c.Retry.MinBackoff)
	}
	if c.Retry.MaxBackoff < c.Retry.MinBackoff {
		return fmt.Errorf("retry.max_backoff: must be at least retry.min_backoff (%s), got %s", c.Retry.MinBackoff, c.Retry.MaxBackoff)
	}
	if c.SelfMetrics.Write && c.SelfMetrics.Measurement == "" {
		return fmt.Errorf("self_metrics.measurement_prefix: is required when self_metrics.write is on")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: must be one of debug, info, warn, error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: must be text or json, got %q", c.Log.Format)
	}
	if c.ShutdownGrace < 0 {
		return fmt.Errorf("shutdown_grace: must not be negative, got %s", c.ShutdownGrace)
	}
	return nil
}

func checkURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	for _, s := range schemes {
		if u.Scheme == s {
			if u.Host == "" {
				return fmt.Errorf("%q has no host", raw)
			}
			if u.User != nil {
				return fmt.Errorf("%q carries credentials in the URL; use the username/password keys", Redact(raw))
			}
			return nil
		}
	}
	return fmt.Errorf("%q: scheme must be one of %s", raw, strings.Join(schemes, ", "))
}

// Redact removes any password from a URL string, for messages.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// Redacted returns a copy of c with every secret masked, for printing.
func (c Config) Redacted() Config {
	c.Traefik.Password = c.Traefik.Password.masked()
	c.Traefik.BearerToken = c.Traefik.BearerToken.masked()
	c.InfluxDB.Password = c.InfluxDB.Password.masked()
	c.Traefik.Headers = maskHeaders(c.Traefik.Headers)
	return c
}

func maskHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		switch strings.ToLower(k) {
		case "authorization", "proxy-authorization", "cookie", "x-api-key":
			v = string(Secret(v).masked())
		}
		out[k] = v
	}
	return out
}
