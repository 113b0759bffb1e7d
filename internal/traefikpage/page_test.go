package traefikpage

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

const fixture = "../../collector/testdata/traefik-v3.6.12-scrape-2.prom"

func parse(t *testing.T, page []byte) map[string]*dto.MetricFamily {
	t.Helper()
	tp := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := tp.TextToMetricFamilies(bytes.NewReader(page))
	require.NoError(t, err)
	return mfs
}

// flat maps "family{sorted labels}/part" to a value: counters and gauges as
// they are, histograms as one entry per bucket bound plus _sum and _count.
func flat(mfs map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			key := name + "{" + strings.Join(ls, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					out[key+"/le="+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)] = float64(b.GetCumulativeCount())
				}
				out[key+"/sum"] = h.GetSampleSum()
				out[key+"/count"] = float64(h.GetSampleCount())
			case dto.MetricType_SUMMARY:
				out[key+"/sum"] = m.GetSummary().GetSampleSum()
				out[key+"/count"] = float64(m.GetSummary().GetSampleCount())
			}
		}
	}
	return out
}

func TestGenerateSampleCount(t *testing.T) {
	for _, tt := range []struct {
		name     string
		services int
		want     int
	}{
		{"no services", 0, 662},
		{"one service", 1, 662 + 647},
		{"20 services", 20, 13602},
		{"100 services", 100, 65362},
	} {
		t.Run(tt.name, func(t *testing.T) {
			page := Generate(tt.services, 3)
			n := 0
			sc := bufio.NewScanner(bytes.NewReader(page))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if l := sc.Text(); l != "" && l[0] != '#' {
					n++
				}
			}
			require.Equal(t, tt.want, n)
			require.Equal(t, tt.want, Samples(tt.services))
			require.Equal(t, page, Generate(tt.services, 3), "not deterministic")
		})
	}
}

// TestGenerateShapeMatchesTraefik checks the page against a real Traefik
// scrape: every family of that scrape is here with the same HELP and TYPE
// lines and the same label names.
func TestGenerateShapeMatchesTraefik(t *testing.T) {
	real, err := os.ReadFile(fixture)
	require.NoError(t, err)
	page := Generate(3, 2)
	ours := parse(t, page)
	for name, want := range parse(t, real) {
		if !strings.HasPrefix(name, "traefik_") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			got, ok := ours[name]
			require.True(t, ok, "family missing")
			require.Equal(t, want.GetType(), got.GetType())
			require.Equal(t, want.GetHelp(), got.GetHelp())
			labelNames := func(mf *dto.MetricFamily) []string {
				var ns []string
				for _, l := range mf.GetMetric()[0].GetLabel() {
					ns = append(ns, l.GetName())
				}
				return ns
			}
			require.Equal(t, labelNames(want), labelNames(got))
		})
	}
	// Lines are written as Traefik writes them: le last, labels sorted.
	require.Contains(t, string(page), `traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="app0000-svc@file",le="0.1"} `)
	require.Contains(t, string(page), "# TYPE traefik_service_retries_total counter\n")
}

func TestGenerateRounds(t *testing.T) {
	const services = 15
	prev := flat(parse(t, Generate(services, 0)))
	for key, v := range prev {
		if strings.HasPrefix(key, "traefik_") && !strings.HasPrefix(key, "traefik_config") &&
			(strings.Contains(key, "_total{") || strings.Contains(key, "duration_seconds{")) {
			require.Zero(t, v, "round 0 must start every request counter at zero: %s", key)
		}
	}
	for round := 1; round <= 6; round++ {
		t.Run("round", func(t *testing.T) {
			mfs := parse(t, Generate(services, round))
			cur := flat(mfs)
			require.Equal(t, len(prev), len(cur), "series appeared or vanished")
			grew, idle := 0, 0
			for key, v := range cur {
				p, ok := prev[key]
				require.True(t, ok, "new series %s", key)
				typ := mfs[key[:strings.IndexByte(key, '{')]].GetType()
				if typ == dto.MetricType_GAUGE {
					continue
				}
				require.GreaterOrEqual(t, v, p, "%s decreased in round %d", key, round)
				if v > p {
					grew++
				} else if strings.HasPrefix(key, "traefik_service_requests_total") {
					idle++
				}
			}
			require.Greater(t, grew, len(cur)/2, "most series should grow")
			require.Positive(t, idle, "some series should stay idle")
			for _, name := range []string{"traefik_entrypoint_request_duration_seconds", "traefik_router_request_duration_seconds", "traefik_service_request_duration_seconds"} {
				for _, m := range mfs[name].GetMetric() {
					h := m.GetHistogram()
					bs := h.GetBucket()
					require.Len(t, bs, 5)
					for i, want := range []float64{0.1, 0.3, 1.2, 5, math.Inf(1)} {
						require.Equal(t, want, bs[i].GetUpperBound())
						if i > 0 {
							require.GreaterOrEqual(t, bs[i].GetCumulativeCount(), bs[i-1].GetCumulativeCount())
						}
					}
					require.Equal(t, h.GetSampleCount(), bs[4].GetCumulativeCount(), "count != +Inf bucket")
					require.Equal(t, h.GetSampleCount() == 0, h.GetSampleSum() == 0)
				}
			}
			prev = cur
		})
	}
}
