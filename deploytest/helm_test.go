package deploytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const chartDir = "charts/traefik-influxdb-bridge"

// kubeVersion is the cluster version lint and template assume. Helm built as
// a Go tool lacks the -X flags of Helm's release build and would otherwise
// assume v1.20, below the chart's kubeVersion.
const kubeVersion = "v1.33.0"

// helm runs the Helm pinned in this module's go.mod (go tool helm) with its
// config, cache and data directories kept out of $HOME.
func helm(t *testing.T, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	home := helmHome(t)
	env := []string{
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data"),
	}
	dir := filepath.Join(repoRoot(t), "deploytest")
	return tryRun(dir, env, "go", append([]string{"tool", "helm"}, args...)...)
}

var helmHomeDir string

func helmHome(t *testing.T) string {
	if helmHomeDir == "" {
		d, err := os.MkdirTemp("", "tib-helm-")
		require.NoError(t, err)
		helmHomeDir = d
	}
	return helmHomeDir
}

// object is one document of `helm template`, decoded into its Go type.
type object struct {
	kind, name, namespace string
	obj                   any
	raw                   []byte
}

// decodeStrict turns one manifest into the k8s.io/api (or prometheus-operator)
// type of its kind; a field the type does not have is an error, as it would be
// for a server doing strict field validation.
func decodeStrict(doc []byte) (object, error) {
	var tm struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return object{}, err
	}
	var target any
	switch tm.APIVersion + "/" + tm.Kind {
	case "v1/ConfigMap":
		target = &corev1.ConfigMap{}
	case "v1/Secret":
		target = &corev1.Secret{}
	case "v1/Service":
		target = &corev1.Service{}
	case "v1/ServiceAccount":
		target = &corev1.ServiceAccount{}
	case "v1/PersistentVolumeClaim":
		target = &corev1.PersistentVolumeClaim{}
	case "apps/v1/Deployment":
		target = &appsv1.Deployment{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		target = &monitoringv1.ServiceMonitor{}
	default:
		return object{}, fmt.Errorf("no Go type known for %s %s", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, target); err != nil {
		return object{}, fmt.Errorf("%s %s: %w", tm.Kind, tm.Metadata.Name, err)
	}
	return object{kind: tm.Kind, name: tm.Metadata.Name, namespace: tm.Metadata.Namespace, obj: target, raw: doc}, nil
}

// splitYAML cuts a multi-document stream with the API machinery's own reader.
func splitYAML(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		docs = append(docs, doc)
	}
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.TrimSpace(line) == "---" {
			continue
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes()
}

// rendered is the output of one `helm template`.
type rendered struct {
	objects []object
}

func (r rendered) kinds() []string {
	var ks []string
	for _, o := range r.objects {
		ks = append(ks, o.kind)
	}
	sort.Strings(ks)
	return ks
}

func get[T any](t *testing.T, r rendered, kind, name string) *T {
	t.Helper()
	for _, o := range r.objects {
		if o.kind == kind && (name == "" || o.name == name) {
			v, ok := o.obj.(*T)
			require.True(t, ok, "%s %s has type %T", kind, name, o.obj)
			return v
		}
	}
	t.Fatalf("no %s %q rendered; have %v", kind, name, r.kinds())
	return nil
}

func all[T any](r rendered, kind string) []*T {
	var out []*T
	for _, o := range r.objects {
		if o.kind == kind {
			out = append(out, o.obj.(*T))
		}
	}
	return out
}

// template renders the chart as release "tib" in namespace "monitoring" with
// the given value files (relative to the chart) and --set flags.
func template(t *testing.T, valueFiles []string, sets ...string) rendered {
	t.Helper()
	args := []string{"template", "tib", filepath.Join(repoRoot(t), chartDir), "--namespace", "monitoring", "--kube-version", kubeVersion}
	for _, f := range valueFiles {
		args = append(args, "--values", filepath.Join(repoRoot(t), chartDir, f))
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, stderr, err := helm(t, args...)
	require.NoError(t, err, "helm %s:\n%s", strings.Join(args, " "), stderr)
	var r rendered
	for _, doc := range splitYAML(t, out) {
		o, err := decodeStrict(doc)
		require.NoError(t, err, "strict decoding of:\n%s", doc)
		r.objects = append(r.objects, o)
	}
	return r
}
