package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one flat Prometheus sample: histograms appear as their _bucket,
// _sum and _count samples, as in the text format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Key identifies the sample's series: name{label="value",...}, labels sorted.
func (s Sample) Key() string { return SeriesKey(s.Name, s.Labels) }

// SeriesKey writes name{k="v",...} with the labels sorted by name, so the
// same series read from Traefik and from InfluxDB gives the same string.
func SeriesKey(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// Samples is one scrape, by series key.
type Samples map[string]Sample

// ParseText reads the Prometheus text format.
func ParseText(r io.Reader) (Samples, error) {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := Samples{}
	for _, fam := range families {
		vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{}, fam)
		if err != nil {
			return nil, err
		}
		for _, v := range vec {
			s := Sample{Labels: map[string]string{}, Value: float64(v.Value)}
			for k, lv := range v.Metric {
				if k == model.MetricNameLabel {
					s.Name = string(lv)
					continue
				}
				s.Labels[string(k)] = string(lv)
			}
			out[s.Key()] = s
		}
	}
	return out, nil
}

// Scrape fetches and parses a Prometheus text endpoint.
func Scrape(ctx context.Context, client *http.Client, url string) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return ParseText(io.LimitReader(resp.Body, 64<<20))
}

// Filter keeps the samples for which keep is true.
func (s Samples) Filter(keep func(Sample) bool) Samples {
	out := Samples{}
	for k, v := range s {
		if keep(v) {
			out[k] = v
		}
	}
	return out
}

// Sum adds the values of the samples named name whose labels include match.
func (s Samples) Sum(name string, match map[string]string) float64 {
	var total float64
	for _, v := range s {
		if v.Name == name && hasLabels(v.Labels, match) {
			total += v.Value
		}
	}
	return total
}

func hasLabels(labels, match map[string]string) bool {
	for k, want := range match {
		if labels[k] != want {
			return false
		}
	}
	return true
}

// IsHistogramCount reports whether a series key names a histogram's _count sample.
func IsHistogramCount(key string) bool {
	name, _, _ := strings.Cut(key, "{")
	return strings.HasSuffix(name, "_count")
}
