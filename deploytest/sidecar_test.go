package deploytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// traefikSidecarValues is the part of the official Traefik chart's values
// that examples/traefik-values-sidecar.yaml sets. Decoding is strict, so a
// key the file sets and this struct lacks is an error.
type traefikSidecarValues struct {
	Deployment struct {
		AdditionalContainers []corev1.Container `json:"additionalContainers"`
		AdditionalVolumes    []corev1.Volume    `json:"additionalVolumes"`
	} `json:"deployment"`
}

// TestTraefikSidecarValues checks the values file for the Traefik chart
// against what this chart renders in sidecar mode: the volumes name the
// ConfigMap and Secret it renders, the mounts put the files where the
// rendered config expects them, and the container alone meets the restricted
// Pod Security Standard.
func TestTraefikSidecarValues(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), chartDir, "examples", "traefik-values-sidecar.yaml"))
	require.NoError(t, err)
	var v traefikSidecarValues
	require.NoError(t, yaml.UnmarshalStrict(raw, &v))
	require.Len(t, v.Deployment.AdditionalContainers, 1)
	c := v.Deployment.AdditionalContainers[0]
	vols := v.Deployment.AdditionalVolumes

	r := template(t, []string{"ci/sidecar-values.yaml"})
	cfg := decodeConfig(t, get[corev1.ConfigMap](t, r, "ConfigMap", "").Data["config.yaml"])

	t.Run("volumes name what the chart renders", func(t *testing.T) {
		for _, vol := range vols {
			switch {
			case vol.ConfigMap != nil:
				get[corev1.ConfigMap](t, r, "ConfigMap", vol.ConfigMap.Name)
			case vol.Secret != nil:
				s := get[corev1.Secret](t, r, "Secret", vol.Secret.SecretName)
				for _, item := range vol.Secret.Items {
					require.Contains(t, s.Data, item.Key)
				}
			case vol.EmptyDir != nil:
			default:
				t.Errorf("volume %s: unexpected kind", vol.Name)
			}
		}
	})

	t.Run("mounts match the rendered config", func(t *testing.T) {
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounts[m.Name] = m.MountPath
		}
		var configMount, secretMount, bufferMount string
		for _, vol := range vols {
			switch {
			case vol.ConfigMap != nil:
				configMount = mounts[vol.Name]
			case vol.Secret != nil:
				secretMount = mounts[vol.Name]
			case vol.EmptyDir != nil:
				bufferMount = mounts[vol.Name]
			}
		}
		require.Equal(t, []string{"--config", configMount + "/config.yaml"}, c.Args)
		require.Equal(t, cfg.Buffer.Dir, bufferMount)
		require.True(t, strings.HasPrefix(cfg.InfluxDB.PasswordFile, secretMount+"/"), "password_file %s is not under %s", cfg.InfluxDB.PasswordFile, secretMount)
		require.Equal(t, []string{"http://127.0.0.1:9100/metrics"}, cfg.Traefik.URLs, "the sidecar scrapes the Traefik chart's metrics port in its own pod")
	})

	t.Run("ports and probes", func(t *testing.T) {
		require.Len(t, c.Ports, 1)
		require.Equal(t, cfg.Listen, ":"+itoa(c.Ports[0].ContainerPort))
		// The Traefik chart names its own ports web, websecure, traefik and metrics.
		require.NotContains(t, []string{"web", "websecure", "traefik", "metrics"}, c.Ports[0].Name)
		require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
		require.Equal(t, c.Ports[0].Name, c.LivenessProbe.HTTPGet.Port.String())
		require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
		require.Equal(t, c.Ports[0].Name, c.ReadinessProbe.HTTPGet.Port.String())
		svc := get[corev1.Service](t, r, "Service", "")
		require.Equal(t, c.Ports[0].ContainerPort, svc.Spec.Ports[0].TargetPort.IntVal, "the chart's Service must reach the sidecar's port")
	})

	t.Run("restricted on its own", func(t *testing.T) {
		requireRestricted(t, metav1.ObjectMeta{Name: "traefik"}, corev1.PodSpec{Containers: []corev1.Container{c}, Volumes: vols})
		require.Equal(t, ptr(true), c.SecurityContext.ReadOnlyRootFilesystem)
	})

	t.Run("image is the chart's appVersion", func(t *testing.T) {
		chart, err := os.ReadFile(filepath.Join(repoRoot(t), chartDir, "Chart.yaml"))
		require.NoError(t, err)
		var meta struct {
			AppVersion string `json:"appVersion"`
		}
		require.NoError(t, yaml.Unmarshal(chart, &meta))
		require.True(t, strings.HasSuffix(c.Image, ":"+meta.AppVersion), "image %s, appVersion %s", c.Image, meta.AppVersion)
	})
}
