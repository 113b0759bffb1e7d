package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// cleanEnv blanks every TIB_* key variable so the developer's environment
// cannot leak into a test; viper ignores empty variables.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, k := range newSchema().keys {
		t.Setenv(envName(k.name), "")
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// load runs loadConfig the way run does, with flags parsed from args.
func load(t *testing.T, file string, args ...string) (*config.Config, loaded, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	addConfigFlags(fs)
	require.NoError(t, fs.Parse(args))
	return loadConfig(file, fs, os.Environ())
}

func TestExampleFileEqualsDefaults(t *testing.T) {
	cleanEnv(t)
	got, info, err := load(t, "../../config.example.yaml")
	require.NoError(t, err)
	require.Empty(t, info.Warnings)
	require.Equal(t, config.Default(), *got)
}

func TestExampleFileDocumentsEveryKey(t *testing.T) {
	// Equal values could also come from defaults filling keys the file left
	// out: every key must be written in the file.
	raw, err := os.ReadFile("../../config.example.yaml")
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	for _, k := range newSchema().keys {
		_, ok := lookupPath(doc, k.name)
		require.True(t, ok, "config.example.yaml does not set %s", k.name)
	}
}

func TestNoFileGivesDefaults(t *testing.T) {
	cleanEnv(t)
	got, _, err := load(t, "")
	require.NoError(t, err)
	require.Equal(t, config.Default(), *got)
}

func TestPrecedence(t *testing.T) {
	file := "influxdb:\n  database: fromfile\n  url: http://file:8086\ntraefik:\n  interval: 20s\n  timeout: 2s\n"
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		database string
		url      string
		interval time.Duration
	}{
		{name: "file over defaults", database: "fromfile", url: "http://file:8086", interval: 20 * time.Second},
		{
			name:     "env over file",
			env:      map[string]string{"TIB_INFLUXDB_DATABASE": "fromenv", "TIB_TRAEFIK_INTERVAL": "30s"},
			database: "fromenv", url: "http://file:8086", interval: 30 * time.Second,
		},
		{
			name:     "flag over env",
			env:      map[string]string{"TIB_INFLUXDB_DATABASE": "fromenv", "TIB_INFLUXDB_URL": "http://env:8086"},
			args:     []string{"--influxdb.database=fromflag", "--traefik.interval=40s"},
			database: "fromflag", url: "http://env:8086", interval: 40 * time.Second,
		},
		{
			name:     "flag left at its default does not override the file",
			args:     []string{"--schema=prometheus"},
			database: "fromfile", url: "http://file:8086", interval: 20 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, _, err := load(t, writeFile(t, "c.yaml", file), tt.args...)
			require.NoError(t, err)
			require.Equal(t, tt.database, cfg.InfluxDB.Database)
			require.Equal(t, tt.url, cfg.InfluxDB.URL)
			require.Equal(t, tt.interval, cfg.Traefik.Interval)
			require.Equal(t, 2*time.Second, cfg.Traefik.Timeout, "untouched file key")
			require.Equal(t, config.Default().Batch, cfg.Batch, "untouched default")
		})
	}
}

func TestEnvironmentShapes(t *testing.T) {
	cleanEnv(t)
	t.Setenv("TIB_TRAEFIK_URLS", "http://a:9100/metrics, http://b:9100/metrics")
	t.Setenv("TIB_TAGS", "region=eu, Rack=r12")
	t.Setenv("TIB_TRAEFIK_HEADERS", "X-Scope=team-a")
	t.Setenv("TIB_BUFFER_MAX_BYTES", "1GiB")
	t.Setenv("TIB_INFLUXDB_GZIP", "false")
	t.Setenv("TIB_BATCH_MAX_LINES", "100")
	t.Setenv("TIB_METRICS_EXCLUDE", "traefik_tls_*")
	t.Setenv("TIB_INFLUXDB_PASSWORD", "s3cret")
	t.Setenv("TIB_SHUTDOWN_GRACE", "1m30s")
	// The file's tags are replaced, not merged: a list or map from the
	// environment is the whole value.
	cfg, _, err := load(t, writeFile(t, "c.yaml", "tags:\n  other: x\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"http://a:9100/metrics", "http://b:9100/metrics"}, cfg.Traefik.URLs)
	require.Equal(t, map[string]string{"region": "eu", "Rack": "r12"}, cfg.Tags)
	require.Equal(t, map[string]string{"X-Scope": "team-a"}, cfg.Traefik.Headers)
	require.Equal(t, config.GiB, cfg.Buffer.MaxBytes)
	require.False(t, cfg.InfluxDB.Gzip)
	require.Equal(t, 100, cfg.Batch.MaxLines)
	require.Equal(t, []string{"traefik_tls_*"}, cfg.Metrics.Exclude)
	require.Equal(t, config.Secret("s3cret"), cfg.InfluxDB.Password)
	require.Equal(t, 90*time.Second, cfg.ShutdownGrace)
}

func TestMapKeysTakeAnySubKeyAndKeepCase(t *testing.T) {
	cleanEnv(t)
	file := "tags:\n  Region: EU\n  rack: 12\ntraefik:\n  headers:\n    X-Scope-OrgID: team-a\n"
	cfg, _, err := load(t, writeFile(t, "c.yaml", file))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"Region": "EU", "rack": "12"}, cfg.Tags)
	require.Equal(t, map[string]string{"X-Scope-OrgID": "team-a"}, cfg.Traefik.Headers)
}

func TestSizesAndDurationsFromFile(t *testing.T) {
	cleanEnv(t)
	file := "buffer:\n  max_bytes: 512MiB\nbatch:\n  max_bytes: 1048576\ntraefik:\n  interval: 2s\n  timeout: 1500ms\n  series_ttl: 2h\n"
	cfg, _, err := load(t, writeFile(t, "c.yaml", file))
	require.NoError(t, err)
	require.Equal(t, 512*config.MiB, cfg.Buffer.MaxBytes)
	require.Equal(t, config.MiB, cfg.Batch.MaxBytes)
	require.Equal(t, 2*time.Second, cfg.Traefik.Interval)
	require.Equal(t, 1500*time.Millisecond, cfg.Traefik.Timeout)
	require.Equal(t, 2*time.Hour, cfg.Traefik.SeriesTTL)
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		want string
	}{
		{name: "unknown nested key", file: "influxdb:\n  pasword: x\n", want: `config: unknown key "influxdb.pasword" (did you mean "influxdb.password"?)`},
		{name: "unknown top-level key", file: "colour: blue\n", want: `config: unknown key "colour"`},
		{name: "unknown key two levels down", file: "influxdb:\n  tls:\n    insecure: true\n", want: `config: unknown key "influxdb.tls.insecure"`},
		{name: "unknown key in a section of its own", file: "grafana:\n  url: x\n", want: `config: unknown key "grafana.url"`},
		{name: "section given a value", file: "influxdb:\n  tls: true\n", want: "config: influxdb.tls: must be a mapping"},
		{name: "bad size", file: "buffer:\n  max_bytes: 12XB\n", want: `config: buffer.max_bytes: invalid size "12XB"`},
		{name: "bad duration", file: "traefik:\n  interval: 10q\n", want: `config: traefik.interval: invalid duration "10q"`},
		{name: "bad bool", file: "influxdb:\n  gzip: maybe\n", want: "config: influxdb.gzip:"},
		{name: "list given a map", file: "traefik:\n  urls:\n    a: b\n", want: "config: traefik.urls:"},
		{name: "bad size from env", env: map[string]string{"TIB_BATCH_MAX_BYTES": "lots"}, want: `config: batch.max_bytes: invalid size "lots"`},
		{name: "bad duration from env", env: map[string]string{"TIB_RETRY_MAX_BACKOFF": "5"}, want: `config: retry.max_backoff: invalid duration "5"`},
		{name: "bad map from env", env: map[string]string{"TIB_TAGS": "region"}, want: `config: tags: "region" is not key=value`},
		{name: "invalid value", file: "schema: graphite\n", want: `config: schema: must be one of traefik, prometheus, telegraf, got "graphite"`},
		{name: "invalid value from env", env: map[string]string{"TIB_LOG_FORMAT": "xml"}, want: `config: log.format: must be text or json`},
		{name: "yaml syntax", file: "influxdb: [\n", want: "config: "},
		{name: "missing password file", file: "influxdb:\n  password_file: /nonexistent/pw\n", want: "config: influxdb.password_file: open /nonexistent/pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			file := ""
			if tt.file != "" {
				file = writeFile(t, "c.yaml", tt.file)
			}
			_, _, err := load(t, file)
			require.Error(t, err)
			require.ErrorIs(t, err, errConfig)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestSecretFiles(t *testing.T) {
	cleanEnv(t)
	pw := writeFile(t, "pw", "from-file\n")
	tok := writeFile(t, "tok", "tok-from-file")
	file := "influxdb:\n  password: inline\n  password_file: " + pw + "\ntraefik:\n  bearer_token_file: " + tok + "\n"
	cfg, _, err := load(t, writeFile(t, "c.yaml", file))
	require.NoError(t, err)
	require.Equal(t, config.Secret("from-file"), cfg.InfluxDB.Password, "file wins, trailing newline dropped")
	require.Equal(t, config.Secret("tok-from-file"), cfg.Traefik.BearerToken)
}

func TestUnknownEnvironmentVariableWarns(t *testing.T) {
	cleanEnv(t)
	t.Setenv("TIB_INFLUXDB_PASWORD", "x")
	_, info, err := load(t, "")
	require.NoError(t, err)
	require.Equal(t, []string{"environment variable TIB_INFLUXDB_PASWORD sets no configuration key; ignored"}, info.Warnings)
}

func TestEnvNames(t *testing.T) {
	for key, want := range map[string]string{
		"influxdb.password":                 "TIB_INFLUXDB_PASSWORD",
		"traefik.urls":                      "TIB_TRAEFIK_URLS",
		"tags":                              "TIB_TAGS",
		"influxdb.tls.insecure_skip_verify": "TIB_INFLUXDB_TLS_INSECURE_SKIP_VERIFY",
	} {
		t.Run(key, func(t *testing.T) {
			require.Equal(t, want, envName(key))
			_, known := newSchema().byName[key]
			require.True(t, known)
		})
	}
	require.False(t, strings.Contains(envName("a.b"), "."))
}

func TestListFlagOverridesEnvironment(t *testing.T) {
	cleanEnv(t)
	t.Setenv("TIB_TRAEFIK_URLS", "http://env:9100/metrics")
	cfg, _, err := load(t, "", "--traefik.urls=http://a:9100/metrics,http://b:9100/metrics", "--buffer.dir=/var/lib/x")
	require.NoError(t, err)
	require.Equal(t, []string{"http://a:9100/metrics", "http://b:9100/metrics"}, cfg.Traefik.URLs)
	require.Equal(t, "/var/lib/x", cfg.Buffer.Dir)
}
