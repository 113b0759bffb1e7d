package main

import (
	"bufio"
	"os"
	"reflect"
	"strings"
	"testing"

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
