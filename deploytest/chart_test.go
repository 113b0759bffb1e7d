package deploytest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

const (
	fullname      = "tib-traefik-influxdb-bridge" // release "tib", chart traefik-influxdb-bridge
	configDir     = "/etc/traefik-influxdb-bridge/config"
	bufferDir     = "/var/lib/traefik-influxdb-bridge"
	secretFromK8s = "s3cret-from-the-secret"
)

type chartCase struct {
	name       string
	valueFiles []string
	kinds      []string
	// wantURLs is config traefik.urls as rendered.
	wantURLs []string
	// password is how the InfluxDB password reaches the bridge: "", "file" or "env".
	password string
	// configMap is the name of the rendered ConfigMap.
	configMap string
}

var chartCases = []chartCase{
	{
		name:      "default values",
		kinds:     []string{"ConfigMap", "Deployment", "Service", "Service", "ServiceAccount"},
		wantURLs:  []string{"dns+http://" + fullname + "-traefik.monitoring.svc:9100/metrics"},
		configMap: fullname,
	},
	{
		name:       "sidecar values",
		valueFiles: []string{"ci/sidecar-values.yaml"},
		kinds:      []string{"ConfigMap", "Secret", "Service"},
		wantURLs:   []string{"http://127.0.0.1:9100/metrics"},
		password:   "file",
		configMap:  "traefik-influxdb-bridge",
	},
	{
		name:       "every option on",
		valueFiles: []string{"ci/all-values.yaml"},
		kinds:      []string{"ConfigMap", "Deployment", "PersistentVolumeClaim", "Service", "Service", "ServiceAccount", "ServiceMonitor"},
		wantURLs:   []string{"dns+http://traefik-metrics-headless.ingress.svc:9100/metrics"},
		password:   "env",
		configMap:  "tib-all",
	},
}

func TestChart(t *testing.T) {
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("lint", func(t *testing.T) {
				args := []string{"lint", "--strict", "--kube-version", kubeVersion, filepath.Join(repoRoot(t), chartDir)}
				for _, f := range tc.valueFiles {
					args = append(args, "--values", filepath.Join(repoRoot(t), chartDir, f))
				}
				out, stderr, err := helm(t, args...)
				require.NoError(t, err, "%s\n%s", out, stderr)
			})

			// Every object is strictly decoded inside template().
			r := template(t, tc.valueFiles)
			require.Equal(t, tc.kinds, r.kinds())

			cm := get[corev1.ConfigMap](t, r, "ConfigMap", tc.configMap)
			text := cm.Data["config.yaml"]
			require.NotEmpty(t, text)

			t.Run("config decodes into config.Config and validates", func(t *testing.T) {
				cfg := decodeConfig(t, text)
				require.NoError(t, cfg.Validate())
				require.Equal(t, tc.wantURLs, cfg.Traefik.URLs)
				require.Equal(t, bufferDir, cfg.Buffer.Dir)
				require.Empty(t, string(cfg.InfluxDB.Password), "a password must never be in the ConfigMap")
				if tc.password == "file" {
					require.Equal(t, "/etc/traefik-influxdb-bridge/secret/password", cfg.InfluxDB.PasswordFile)
				} else {
					require.Empty(t, cfg.InfluxDB.PasswordFile)
				}
			})

			t.Run("check-config accepts the rendered config", func(t *testing.T) {
				bin := bridgeBinary(t)
				var env []corev1.EnvVar
				if d := all[appsv1.Deployment](r, "Deployment"); len(d) == 1 {
					env = d[0].Spec.Template.Spec.Containers[0].Env
				}
				got := checkConfig(t, bin, text, env)
				require.Equal(t, tc.wantURLs, got.Traefik.URLs)
				if tc.password != "" {
					require.Equal(t, "<redacted>", string(got.InfluxDB.Password), "the password from the %s must be read and masked", tc.password)
				} else {
					require.Empty(t, string(got.InfluxDB.Password))
				}
			})

			deployments := all[appsv1.Deployment](r, "Deployment")
			if len(deployments) == 0 {
				return
			}
			d := deployments[0]
			t.Run("deployment", func(t *testing.T) { checkDeployment(t, tc, r, d, text) })
		})
	}
}

func checkDeployment(t *testing.T, tc chartCase, r rendered, d *appsv1.Deployment, text string) {
	spec := d.Spec.Template.Spec
	require.Equal(t, int32(1), *d.Spec.Replicas)
	require.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type)
	require.Len(t, spec.Containers, 1)
	c := spec.Containers[0]

	t.Run("restricted pod security standard", func(t *testing.T) {
		requireRestricted(t, d.Spec.Template.ObjectMeta, spec)
		// The fields the standard asks for, spelled out so that a change of
		// default shows here by name.
		require.NotNil(t, c.SecurityContext)
		sc := c.SecurityContext
		require.Equal(t, ptr(false), sc.AllowPrivilegeEscalation)
		require.Equal(t, ptr(true), sc.ReadOnlyRootFilesystem)
		require.Equal(t, ptr(true), sc.RunAsNonRoot)
		require.NotEqual(t, int64(0), *sc.RunAsUser)
		require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
		require.Empty(t, sc.Capabilities.Add)
		require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type)
		require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, spec.SecurityContext.SeccompProfile.Type)
		require.Equal(t, ptr(true), spec.SecurityContext.RunAsNonRoot)
		require.False(t, spec.HostNetwork || spec.HostPID || spec.HostIPC)
		require.Equal(t, ptr(false), spec.AutomountServiceAccountToken)
	})

	t.Run("probes and port", func(t *testing.T) {
		cfg := decodeConfig(t, text)
		require.Len(t, c.Ports, 1)
		require.Equal(t, "http", c.Ports[0].Name)
		require.Equal(t, cfg.Listen, ":"+itoa(c.Ports[0].ContainerPort), "the container port must be the port the bridge listens on")
		require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
		require.Equal(t, "http", c.LivenessProbe.HTTPGet.Port.String())
		require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
		require.Equal(t, "http", c.ReadinessProbe.HTTPGet.Port.String())
		require.NotEmpty(t, c.Resources.Requests)
		require.NotEmpty(t, c.Resources.Limits)
	})

	t.Run("volumes", func(t *testing.T) {
		cfg := decodeConfig(t, text)
		require.Equal(t, []string{"--config", configDir + "/config.yaml"}, c.Args)
		require.Equal(t, configDir, mountPathOf(t, c, volumeNamed(t, spec, "config").Name))
		require.Equal(t, tc.configMap, volumeNamed(t, spec, "config").ConfigMap.Name)
		require.Equal(t, cfg.Buffer.Dir, mountPathOf(t, c, "buffer"))
		for _, m := range c.VolumeMounts {
			v := volumeNamed(t, spec, m.Name)
			switch {
			case v.ConfigMap != nil:
				get[corev1.ConfigMap](t, r, "ConfigMap", v.ConfigMap.Name)
			case v.PersistentVolumeClaim != nil:
				get[corev1.PersistentVolumeClaim](t, r, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName)
			}
		}
		if cfg.InfluxDB.PasswordFile != "" {
			require.True(t, strings.HasPrefix(cfg.InfluxDB.PasswordFile, mountPathOf(t, c, "secret")+"/"))
		}
		if cfg.InfluxDB.TLS.CAFile != "" {
			require.True(t, strings.HasPrefix(cfg.InfluxDB.TLS.CAFile, mountPathOf(t, c, "influxdb-ca")+"/"))
		}
	})

	t.Run("checksum of the config rolls the pod", func(t *testing.T) {
		sum := sha256.Sum256([]byte(strings.TrimSuffix(text, "\n")))
		require.Equal(t, hex.EncodeToString(sum[:]), d.Spec.Template.Annotations["checksum/config"])
		changed := template(t, tc.valueFiles, "config.log.level=warn")
		d2 := get[appsv1.Deployment](t, changed, "Deployment", d.Name)
		require.NotEqual(t, d.Spec.Template.Annotations["checksum/config"], d2.Spec.Template.Annotations["checksum/config"])
	})

	t.Run("services select what they should", func(t *testing.T) {
		podLabels := labels.Set(d.Spec.Template.Labels)
		for _, s := range all[corev1.Service](r, "Service") {
			if s.Spec.ClusterIP == corev1.ClusterIPNone {
				// The discovery Service: its name and namespace are the DNS name in traefik.urls.
				want := "dns+http://" + s.Name + "." + s.Namespace + ".svc:" + itoa(s.Spec.Ports[0].Port) + "/metrics"
				require.Equal(t, tc.wantURLs, []string{want})
				require.False(t, labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels), "the discovery Service must select Traefik, not the bridge")
				continue
			}
			require.True(t, labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels), "Service %s does not select the bridge pod", s.Name)
		}
	})

	t.Run("the ServiceMonitor selects the self-metrics Service only", func(t *testing.T) {
		for _, sm := range all[monitoringv1.ServiceMonitor](r, "ServiceMonitor") {
			sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			require.NoError(t, err)
			var selected []*corev1.Service
			for _, s := range all[corev1.Service](r, "Service") {
				if s.Namespace == sm.Namespace && sel.Matches(labels.Set(s.Labels)) {
					selected = append(selected, s)
				}
			}
			require.Len(t, selected, 1)
			s := selected[0]
			require.True(t, labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)))
			require.Equal(t, []string{s.Namespace}, sm.Spec.NamespaceSelector.MatchNames)
			require.Len(t, sm.Spec.Endpoints, 1)
			require.Equal(t, s.Spec.Ports[0].Name, sm.Spec.Endpoints[0].Port)
			require.Equal(t, "/metrics", sm.Spec.Endpoints[0].Path)
		}
	})
}

func TestChartRestrictedCheckCanFail(t *testing.T) {
	// The evaluator used above must actually refuse a pod that breaks the standard.
	for _, set := range []string{
		"securityContext.allowPrivilegeEscalation=true",
		"securityContext.runAsNonRoot=false",
		"podSecurityContext.seccompProfile.type=Unconfined",
	} {
		t.Run(set, func(t *testing.T) {
			d := get[appsv1.Deployment](t, template(t, nil, set), "Deployment", "")
			ok, why := evaluateRestricted(t, d.Spec.Template.ObjectMeta, d.Spec.Template.Spec)
			require.False(t, ok, "the restricted check allowed a pod with %s", set)
			require.NotEmpty(t, why)
		})
	}
}

func TestChartSchemaRejectsBadValues(t *testing.T) {
	tests := []struct {
		name, set, want string
	}{
		{name: "password in the ConfigMap", set: "config.influxdb.password=hunter2", want: "password"},
		{name: "unknown mode", set: "mode=daemonset", want: "mode"},
		{name: "bad duration", set: "config.traefik.interval=10sec", want: "interval"},
		{name: "unknown top-level key", set: "replicas=2", want: "replicas"},
		{name: "unknown config key", set: "config.influxdb.databse=traefik", want: "databse"},
		{name: "bad size", set: "config.buffer.max_bytes=lots", want: "max_bytes"},
		{name: "bad mountAs", set: "auth.mountAs=volume", want: "mountAs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := helm(t, "lint", "--strict", "--kube-version", kubeVersion, filepath.Join(repoRoot(t), chartDir), "--set", tt.set)
			require.Error(t, err, "helm lint accepted %s:\n%s", tt.set, out)
			require.Contains(t, string(out)+string(stderr), tt.want)
		})
	}
}

// TestChartValuesMirrorConfig keeps values.yaml's config: in step with
// config.Config: the same keys (less the ones the chart owns), the same
// defaults, and the same keys in values.schema.json.
func TestChartValuesMirrorConfig(t *testing.T) {
	chartOwned := []string{"buffer.dir", "influxdb.password", "influxdb.password_file", "listen", "traefik.bearer_token", "traefik.password"}

	raw, err := os.ReadFile(filepath.Join(repoRoot(t), chartDir, "values.yaml"))
	require.NoError(t, err)
	var values struct {
		Config yaml.Node `yaml:"config"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &values))
	var cfgMap map[string]any
	require.NoError(t, values.Config.Decode(&cfgMap))

	structKeys := yamlLeafKeys(reflect.TypeFor[config.Config](), "")
	t.Run("keys", func(t *testing.T) {
		want := slices.DeleteFunc(slices.Clone(structKeys), func(k string) bool { return slices.Contains(chartOwned, k) })
		require.Equal(t, want, mapLeafKeys(cfgMap, "", structKeys))
	})

	t.Run("defaults", func(t *testing.T) {
		var got config.Config
		dec := yaml.NewDecoder(strings.NewReader(nodeText(t, &values.Config)))
		dec.KnownFields(true)
		require.NoError(t, dec.Decode(&got))
		want := config.Default()
		// What the chart fills in itself.
		got.Traefik.URLs = want.Traefik.URLs
		got.Listen = want.Listen
		require.Equal(t, want, got)
	})

	t.Run("schema", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(repoRoot(t), chartDir, "values.schema.json"))
		require.NoError(t, err)
		var schema jsonSchema
		require.NoError(t, json.Unmarshal(raw, &schema))
		cfgSchema := schema.Properties["config"]
		require.NotNil(t, cfgSchema)
		require.Equal(t, mapLeafKeys(cfgMap, "", structKeys), schemaLeafKeys(cfgSchema, "", structKeys))
	})
}

type jsonSchema struct {
	Properties map[string]*jsonSchema `json:"properties"`
}

// yamlLeafKeys lists the dotted YAML keys of a config struct; maps are leaves.
func yamlLeafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, yamlLeafKeys(f.Type, prefix+tag+".")...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	sort.Strings(keys)
	return keys
}

func mapLeafKeys(m map[string]any, prefix string, leaves []string) []string {
	var keys []string
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && !slices.Contains(leaves, prefix+k) {
			keys = append(keys, mapLeafKeys(sub, prefix+k+".", leaves)...)
			continue
		}
		keys = append(keys, prefix+k)
	}
	sort.Strings(keys)
	return keys
}

func schemaLeafKeys(s *jsonSchema, prefix string, leaves []string) []string {
	var keys []string
	for k, v := range s.Properties {
		if len(v.Properties) > 0 && !slices.Contains(leaves, prefix+k) {
			keys = append(keys, schemaLeafKeys(v, prefix+k+".", leaves)...)
			continue
		}
		keys = append(keys, prefix+k)
	}
	sort.Strings(keys)
	return keys
}

func nodeText(t *testing.T, n *yaml.Node) string {
	t.Helper()
	b, err := yaml.Marshal(n)
	require.NoError(t, err)
	return string(b)
}

// decodeConfig reads a config file the way the bridge's file format defines
// it: config.Config's keys, unknown keys refused, over the built-in defaults.
func decodeConfig(t *testing.T, text string) config.Config {
	t.Helper()
	cfg := config.Default()
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg), "config:\n%s", text)
	return cfg
}

// checkConfig runs `bridge --check-config` on a rendered config as the pod
// would: the files it names exist (under a temporary root), secret env vars
// carry a value, and nothing TIB_* leaks in from the test's environment.
// It returns the effective config the bridge printed.
func checkConfig(t *testing.T, bin, text string, env []corev1.EnvVar) config.Config {
	t.Helper()
	var vars []string
	for _, e := range env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			v = secretFromK8s
		}
		vars = append(vars, e.Name+"="+v)
	}
	return checkConfigEnv(t, bin, text, vars)
}

// containerDirs are where the chart and the compose file mount files into the
// bridge's container; checkConfigEnv moves them under a temporary root.
var containerDirs = []string{"/etc/traefik-influxdb-bridge/", "/var/lib/traefik-influxdb-bridge", "/run/secrets/"}

// checkConfigEnv is checkConfig with the container's environment as K=V.
// Every *_file the config or the environment names is created with a
// stand-in secret.
func checkConfigEnv(t *testing.T, bin, text string, env []string) config.Config {
	t.Helper()
	root := t.TempDir()
	remap := func(s string) string {
		for _, prefix := range containerDirs {
			s = strings.ReplaceAll(s, prefix, root+prefix)
		}
		return s
	}
	text = remap(text)
	cfg := decodeConfig(t, text)
	files := []string{cfg.InfluxDB.PasswordFile, cfg.Traefik.PasswordFile, cfg.Traefik.BearerTokenFile, cfg.InfluxDB.TLS.CAFile}
	vars := make([]string, 0, len(env))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TIB_") {
			vars = append(vars, kv)
		}
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		v = remap(v)
		if strings.HasSuffix(k, "_FILE") {
			files = append(files, v)
		}
		vars = append(vars, k+"="+v)
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(f), 0o755))
		require.NoError(t, os.WriteFile(f, []byte(secretFromK8s+"\n"), 0o600))
	}
	file := filepath.Join(root, "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte(text), 0o600))

	out, stderr, err := runEnv(root, vars, bin, "--check-config", "--config", file)
	require.NoError(t, err, "--check-config refused the config:\n%s\n%s", stderr, text)
	require.NotContains(t, string(out), secretFromK8s, "--check-config printed a secret")
	var got config.Config
	dec := yaml.NewDecoder(strings.NewReader(string(out)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&got), "%s", out)
	return got
}

func requireRestricted(t *testing.T, meta metav1.ObjectMeta, spec corev1.PodSpec) {
	t.Helper()
	ok, why := evaluateRestricted(t, meta, spec)
	require.True(t, ok, "not allowed under the restricted Pod Security Standard: %s", why)
}

// evaluateRestricted runs the Pod Security admission's own checks at level
// "restricted", latest version.
func evaluateRestricted(t *testing.T, meta metav1.ObjectMeta, spec corev1.PodSpec) (bool, string) {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	require.NoError(t, err)
	res := policy.AggregateCheckResults(ev.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &meta, &spec))
	return res.Allowed, res.ForbiddenReason() + ": " + res.ForbiddenDetail()
}

func volumeNamed(t *testing.T, spec corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return corev1.Volume{}
}

func mountPathOf(t *testing.T, c corev1.Container, volume string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	t.Fatalf("container %s does not mount %q", c.Name, volume)
	return ""
}

func ptr[T any](v T) *T { return &v }

func itoa[T ~int32 | ~int](v T) string { return strconv.Itoa(int(v)) }
