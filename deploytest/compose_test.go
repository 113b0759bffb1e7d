package deploytest

import (
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

const composeDir = "examples/docker-compose"

// composeEnv stands in for the .env that setup.sh writes.
var composeEnv = []string{
	"INFLUXDB_PASSWORD=p1", "INFLUXDB_ADMIN_PASSWORD=p2", "GRAFANA_INFLUXDB_PASSWORD=p3", "GRAFANA_ADMIN_PASSWORD=p4",
}

func loadCompose(t *testing.T, env []string) (*types.Project, error) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), composeDir)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv(env), cli.WithResolvedPaths(true))
	require.NoError(t, err)
	return opts.LoadProject(t.Context())
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	require.NoError(t, err)
	return s
}

// mountSource is the host path mounted at target in s, or "".
func mountSource(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Target == target {
			return v.Source
		}
	}
	return ""
}

func envOf(s types.ServiceConfig, key string) string {
	if v, ok := s.Environment[key]; ok && v != nil {
		return *v
	}
	return ""
}

// TestCompose loads the compose file with compose-go (schema validation,
// interpolation, path resolution) and checks that its parts fit together.
func TestCompose(t *testing.T) {
	root := repoRoot(t)

	t.Run("refuses to start without setup.sh's passwords", func(t *testing.T) {
		_, err := loadCompose(t, nil)
		require.ErrorContains(t, err, "run ./setup.sh first")
	})

	p, err := loadCompose(t, composeEnv)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"backend", "traefik", "influxdb", "bridge", "grafana"}, p.ServiceNames())

	traefik := service(t, p, "traefik")
	bridge := service(t, p, "bridge")
	influx := service(t, p, "influxdb")
	grafana := service(t, p, "grafana")

	t.Run("images are pinned", func(t *testing.T) {
		require.Equal(t, "traefik:v3.6.12", traefik.Image)
		require.Regexp(t, `^influxdb:1\.8\.[0-9]+$`, influx.Image)
		for _, s := range p.Services {
			if s.Build == nil {
				require.Regexp(t, `:[^:]*[0-9][^:]*$`, s.Image, "service %s: a moving tag", s.Name)
			}
		}
	})

	t.Run("bind mounts exist or setup.sh makes them", func(t *testing.T) {
		made := runSetup(t)
		for _, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeBind {
					continue
				}
				rel, err := filepath.Rel(filepath.Join(root, composeDir), v.Source)
				require.NoError(t, err)
				if strings.HasPrefix(rel, "certs/") || strings.HasPrefix(rel, "secrets/") {
					require.FileExists(t, filepath.Join(made, rel), "service %s mounts %s, which setup.sh does not make", s.Name, rel)
					continue
				}
				require.NoError(t, fileOrDir(v.Source), "service %s mounts %s", s.Name, v.Source)
			}
		}
		for name, sec := range p.Secrets {
			rel, err := filepath.Rel(filepath.Join(root, composeDir), sec.File)
			require.NoError(t, err)
			require.FileExists(t, filepath.Join(made, rel), "secret %s", name)
		}
	})

	t.Run("traefik uses the shared dynamic config", func(t *testing.T) {
		static := readYAML(t, mountSource(traefik, "/etc/traefik/traefik.yml"))
		require.Equal(t, []string{"--configFile=/etc/traefik/traefik.yml"}, []string(traefik.Command))
		dynTarget := dig[string](t, static, "providers", "file", "filename")
		require.Equal(t, filepath.Join(root, "examples", "traefik", "dynamic.yml"), mountSource(traefik, dynTarget))

		// Every {{ env "X" }} without a default is set, and the files it names are mounted.
		dyn, err := os.ReadFile(filepath.Join(root, "examples", "traefik", "dynamic.yml"))
		require.NoError(t, err)
		refs := regexp.MustCompile(`\{\{\s*env\s+"([A-Z_]+)"\s*(\|\s*default)?`).FindAllStringSubmatch(string(dyn), -1)
		require.NotEmpty(t, refs)
		for _, m := range refs {
			if m[2] != "" {
				continue
			}
			v := envOf(traefik, m[1])
			require.NotEmpty(t, v, "dynamic.yml reads %s, which the traefik service does not set", m[1])
			if strings.HasSuffix(m[1], "_FILE") {
				require.NotEmpty(t, mountSource(traefik, v), "%s=%s is not mounted", m[1], v)
			}
		}
		backend, err := url.Parse(envOf(traefik, "BACKEND_URL"))
		require.NoError(t, err)
		require.Contains(t, p.ServiceNames(), backend.Hostname())
	})

	t.Run("bridge scrapes traefik's metrics entrypoint and writes to influxdb over https", func(t *testing.T) {
		static := readYAML(t, mountSource(traefik, "/etc/traefik/traefik.yml"))
		ep := dig[string](t, static, "metrics", "prometheus", "entryPoint")
		addr := dig[string](t, static, "entryPoints", ep, "address")
		u, err := url.Parse(envOf(bridge, "TIB_TRAEFIK_URLS"))
		require.NoError(t, err)
		require.Equal(t, "traefik", u.Hostname())
		require.Equal(t, addr, ":"+u.Port())

		iu, err := url.Parse(envOf(bridge, "TIB_INFLUXDB_URL"))
		require.NoError(t, err)
		require.Equal(t, "https", iu.Scheme)
		require.Equal(t, "influxdb", iu.Hostname())
		require.Equal(t, "true", envOf(influx, "INFLUXDB_HTTP_HTTPS_ENABLED"))
		require.Equal(t, "true", envOf(influx, "INFLUXDB_HTTP_AUTH_ENABLED"))
		for _, k := range []string{"INFLUXDB_HTTP_HTTPS_CERTIFICATE", "INFLUXDB_HTTP_HTTPS_PRIVATE_KEY"} {
			require.NotEmpty(t, mountSource(influx, envOf(influx, k)), "%s is not mounted", k)
		}
	})

	t.Run("bridge config is the e2e suite's, with TIB_ overrides", func(t *testing.T) {
		cmd := []string(bridge.Command)
		require.Len(t, cmd, 2)
		require.Equal(t, "--config", cmd[0])
		require.Equal(t, filepath.Join(root, "examples", "bridge", "standalone.yaml"), mountSource(bridge, cmd[1]))
		require.Equal(t, filepath.Join(root), bridge.Build.Context)
		require.FileExists(t, filepath.Join(bridge.Build.Context, bridge.Build.Dockerfile))

		keys := map[string]bool{}
		for _, k := range yamlLeafKeys(reflect.TypeFor[config.Config](), "") {
			keys["TIB_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
		}
		var env []string
		for k := range bridge.Environment {
			require.True(t, keys[k], "%s is not a config key", k)
			env = append(env, k+"="+envOf(bridge, k))
		}
		slices.Sort(env)

		raw, err := os.ReadFile(mountSource(bridge, cmd[1]))
		require.NoError(t, err)
		cfg := decodeConfig(t, string(raw))
		require.Equal(t, bufferDir, cfg.Buffer.Dir, "the image makes that directory for the non-root user")
		require.Equal(t, types.VolumeTypeVolume, volumeAt(t, bridge, cfg.Buffer.Dir).Type, "a named volume, so it takes the image directory's owner")
		require.NotEmpty(t, mountSource(bridge, cfg.InfluxDB.TLS.CAFile), "influxdb.tls.ca_file is not mounted")
		pwFile := envOf(bridge, "TIB_INFLUXDB_PASSWORD_FILE")
		require.True(t, slices.ContainsFunc(bridge.Secrets, func(s types.ServiceSecretConfig) bool { return "/run/secrets/"+s.Source == pwFile }))

		t.Run("check-config", func(t *testing.T) {
			bin := bridgeBinary(t)
			got := checkConfigEnv(t, bin, string(raw), env)
			require.Equal(t, []string{envOf(bridge, "TIB_TRAEFIK_URLS")}, got.Traefik.URLs)
			require.Equal(t, envOf(bridge, "TIB_INFLUXDB_URL"), got.InfluxDB.URL)
			require.Equal(t, "<redacted>", string(got.InfluxDB.Password), "the password file was not read")
		})
	})

	t.Run("grafana provisioning fits", func(t *testing.T) {
		prov := mountSource(grafana, "/etc/grafana/provisioning")
		require.Equal(t, filepath.Join(root, "examples", "grafana", "provisioning"), prov)
		ds := readYAML(t, filepath.Join(prov, "datasources", "influxdb.yaml"))
		sources := dig[[]any](t, ds, "datasources")
		require.Len(t, sources, 1)
		src := sources[0].(map[string]any)
		require.Equal(t, envOf(bridge, "TIB_INFLUXDB_URL"), src["url"])
		require.Equal(t, "influxdb", src["type"])
		for _, v := range src["secureJsonData"].(map[string]any) {
			m := regexp.MustCompile(`^\$__file\{(.+)\}$`).FindStringSubmatch(v.(string))
			require.NotNil(t, m, "secureJsonData must come from files, got %q", v)
			mounted := mountSource(grafana, m[1]) != "" ||
				slices.ContainsFunc(grafana.Secrets, func(s types.ServiceSecretConfig) bool { return "/run/secrets/"+s.Source == m[1] })
			require.True(t, mounted, "%s is neither mounted nor a secret", m[1])
		}
		dash := readYAML(t, filepath.Join(prov, "dashboards", "traefik-influxdb-bridge.yaml"))
		providers := dig[[]any](t, dash, "providers")
		path := providers[0].(map[string]any)["options"].(map[string]any)["path"].(string)
		require.Equal(t, filepath.Join(root, "examples", "grafana", "dashboards"), mountSource(grafana, path))
	})
}

// TestComposeSetupScript runs setup.sh twice into a temporary directory: the
// certificates chain to its CA for the names the services use, the .env
// passwords are the secrets' files, and a second run changes nothing.
func TestComposeSetupScript(t *testing.T) {
	dir := runSetup(t)
	before := snapshot(t, dir)
	run(t, dir, nil, "bash", filepath.Join(repoRoot(t), composeDir, "setup.sh"), dir)
	require.Equal(t, before, snapshot(t, dir), "a second run changed files")

	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "certs", "ca.pem")))
	for _, tc := range []struct{ name, dns string }{{"influxdb", "influxdb"}, {"traefik", "traefik"}} {
		t.Run(tc.name+" certificate", func(t *testing.T) {
			cert := readCert(t, filepath.Join(dir, "certs", tc.name+".pem"))
			_, err := cert.Verify(x509.VerifyOptions{DNSName: tc.dns, Roots: roots})
			require.NoError(t, err)
		})
	}

	t.Run(".env matches secrets", func(t *testing.T) {
		env := map[string]string{}
		raw, err := os.ReadFile(filepath.Join(dir, ".env"))
		require.NoError(t, err)
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
				env[k] = v
			}
		}
		for k, file := range map[string]string{
			"INFLUXDB_PASSWORD":         "influxdb-password",
			"INFLUXDB_ADMIN_PASSWORD":   "influxdb-admin-password",
			"GRAFANA_INFLUXDB_PASSWORD": "grafana-influxdb-password",
			"GRAFANA_ADMIN_PASSWORD":    "grafana-admin-password",
		} {
			secret, err := os.ReadFile(filepath.Join(dir, "secrets", file))
			require.NoError(t, err)
			require.Len(t, env[k], 32)
			require.Equal(t, strings.TrimSpace(string(secret)), env[k])
		}
	})
}

// runSetup runs setup.sh into a fresh directory and returns it.
func runSetup(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		requireReal(t, "openssl (Debian package openssl) is not installed; setup.sh needs it")
	}
	dir := t.TempDir()
	run(t, dir, nil, "bash", filepath.Join(repoRoot(t), composeDir, "setup.sh"), dir)
	return dir
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	}))
	return out
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(raw)
	require.NotNil(t, block)
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return c
}

func volumeAt(t *testing.T, s types.ServiceConfig, target string) types.ServiceVolumeConfig {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Target == target {
			return v
		}
	}
	t.Fatalf("service %s mounts nothing at %s", s.Name, target)
	return types.ServiceVolumeConfig{}
}

func fileOrDir(path string) error {
	_, err := os.Stat(path)
	return err
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &m), path)
	return m
}

// dig walks nested YAML maps by key and returns the value as T.
func dig[T any](t *testing.T, m map[string]any, keys ...string) T {
	t.Helper()
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		require.True(t, ok, "%v: not a map at %q", keys, k)
		cur, ok = mm[k]
		require.True(t, ok, "%v: no key %q", keys, k)
	}
	v, ok := cur.(T)
	require.True(t, ok, "%v: %T, not %T", keys, cur, v)
	return v
}
