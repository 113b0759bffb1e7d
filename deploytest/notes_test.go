package deploytest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

// TestChartNotes renders NOTES.txt with Helm's own engine (as helm install
// would; install needs a cluster, template leaves notes out) and checks it
// tells what the release does.
func TestChartNotes(t *testing.T) {
	chartPath := filepath.Join(repoRoot(t), chartDir)
	tests := []struct {
		name       string
		valueFiles []string
		sets       map[string]any
		want       []string
	}{
		{
			name: "default values",
			want: []string{"(standalone mode)", "dns+http://tib-traefik-influxdb-bridge-traefik.traefik.svc:9100/metrics", "Password: none", "persistence.enabled=true", "get endpointslices"},
		},
		{
			name:       "sidecar values",
			valueFiles: []string{"ci/sidecar-values.yaml"},
			want:       []string{"(sidecar mode)", "http://127.0.0.1:9100/metrics", "Secret traefik-influxdb-bridge key password, as file /etc/traefik-influxdb-bridge/secret/password", "traefik-values-sidecar.yaml", "rollout restart"},
		},
		{
			name:       "sidecar values under another name and an existing Secret",
			valueFiles: []string{"ci/sidecar-values.yaml"},
			sets:       map[string]any{"fullnameOverride": "", "auth": map[string]any{"existingSecret": "influx-pw"}},
			want:       []string{"named its objects \"tib-traefik-influxdb-bridge\"", "your Secret \"influx-pw\""},
		},
		{
			name:       "every option on",
			valueFiles: []string{"ci/all-values.yaml"},
			want:       []string{"dns+http://traefik-metrics-headless.ingress.svc:9100/metrics", "Secret influxdb-credentials key influx-password, as env TIB_INFLUXDB_PASSWORD"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chrt, err := loader.Load(chartPath)
			require.NoError(t, err)
			vals := map[string]any{}
			for _, f := range tt.valueFiles {
				v, err := chartutil.ReadValuesFile(filepath.Join(chartPath, f))
				require.NoError(t, err)
				vals = chartutil.MergeTables(v, vals) // a later file wins, as with -f
			}
			if tt.sets != nil {
				vals = chartutil.MergeTables(tt.sets, vals) // --set wins over files
			}
			caps := chartutil.DefaultCapabilities.Copy()
			caps.KubeVersion.Version = kubeVersion
			rv, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{Name: "tib", Namespace: "traefik", IsInstall: true}, caps)
			require.NoError(t, err)
			out, err := engine.Render(chrt, rv)
			require.NoError(t, err)
			notes := out[chrt.Name()+"/templates/NOTES.txt"]
			require.NotEmpty(t, notes)
			require.NotContains(t, notes, "<no value>")
			for _, w := range tt.want {
				require.Contains(t, notes, w)
			}
			if !strings.Contains(tt.name, "default") {
				require.NotContains(t, notes, "Password: none")
			}
		})
	}
}
