package main

import (
	"bufio"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// TestReadmeConfigReference checks the README's key table against the
// configuration: every key is there once, and its default column, read as
// YAML, decodes to the built-in default.
func TestReadmeConfigReference(t *testing.T) {
	f, err := os.Open("../../README.md")
	require.NoError(t, err)
	defer f.Close()

	rows := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		key := strings.Trim(strings.TrimSpace(cells[1]), "`")
		def := strings.Trim(strings.TrimSpace(cells[2]), "`")
		if _, ok := newSchema().byName[key]; !ok {
			continue // a table of flags or endpoints
		}
		_, dup := rows[key]
		require.False(t, dup, "README lists %s twice", key)
		rows[key] = def
	}
	require.NoError(t, sc.Err())

	defaults := reflect.ValueOf(config.Default())
	for _, k := range newSchema().keys {
		t.Run(k.name, func(t *testing.T) {
			text, ok := rows[k.name]
			require.True(t, ok, "README's configuration table has no row for %s", k.name)
			var raw any
			require.NoError(t, yaml.Unmarshal([]byte(text), &raw), "default column %q", text)
			want := defaults.FieldByIndex(k.index)
			got := reflect.New(want.Type()).Elem()
			require.NoError(t, decodeKey(raw, got), "default column %q", text)
			require.Equal(t, want.Interface(), got.Interface(), "README default of %s", k.name)
		})
	}
}

// TestReadmeFlags checks that the README names every flag.
func TestReadmeFlags(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, name := range []string{"config", "once", "check-config", "version"} {
		require.Contains(t, string(b), "`--"+name, "README does not document --%s", name)
	}
	for _, f := range flagKeys {
		require.Contains(t, string(b), "`--"+f.key+"`", "README does not document --%s", f.key)
	}
}

// TestReadmeHelmSidecar checks the README's sidecar values: valid YAML, every
// TIB_* variable sets a key, and the arguments are flags the command knows.
func TestReadmeHelmSidecar(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	const start = "```yaml\n# values.yaml for the traefik/traefik chart\n"
	_, rest, ok := strings.Cut(string(b), start)
	require.True(t, ok, "README has no Helm values block")
	block, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)

	var values struct {
		Deployment struct {
			AdditionalContainers []struct {
				Name string   `yaml:"name"`
				Args []string `yaml:"args"`
				Env  []struct {
					Name string `yaml:"name"`
				} `yaml:"env"`
				Ports []struct {
					ContainerPort int `yaml:"containerPort"`
				} `yaml:"ports"`
			} `yaml:"additionalContainers"`
			AdditionalVolumes []map[string]any `yaml:"additionalVolumes"`
		} `yaml:"deployment"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(block), &values))
	require.Len(t, values.Deployment.AdditionalContainers, 1)
	c := values.Deployment.AdditionalContainers[0]

	known := map[string]bool{}
	for _, k := range newSchema().keys {
		known[envName(k.name)] = true
	}
	require.NotEmpty(t, c.Env)
	for _, e := range c.Env {
		require.True(t, known[e.Name], "%s sets no configuration key", e.Name)
	}
	fs := pflag.NewFlagSet("sidecar", pflag.ContinueOnError)
	addConfigFlags(fs)
	require.NoError(t, fs.Parse(c.Args))
	listen := config.Default().Listen
	require.Equal(t, ":9180", listen)
	require.Equal(t, 9180, c.Ports[0].ContainerPort, "the port of listen's default")
	require.Len(t, values.Deployment.AdditionalVolumes, 1)
}
