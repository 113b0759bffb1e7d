package collector

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

// genHistogramPage draws a page of histogram, summary and counter
// families whose series share labels in the ways that matter to the
// converter's remembered tag set (writeTags, sameTags): consecutive series
// and families with the same labels, labels differing in one value only,
// empty values, le not last or missing, labels out of order, a name given
// twice. scrape makes the values grow from one page to the next.
func genHistogramPage(t *rapid.T, scrape int) string {
	values := []string{"a", "b", "", `x"y`, "a b"}
	names := []string{"code", "method", "service", "zz", "host"}
	var sb strings.Builder
	for f := range rapid.IntRange(1, 4).Draw(t, "families") {
		typ := rapid.SampledFrom([]string{"histogram", "summary", "counter"}).Draw(t, "type")
		name := fmt.Sprintf("fam%d", rapid.IntRange(0, 2).Draw(t, "fam"))
		if f > 0 && rapid.Bool().Draw(t, "newname") {
			name = fmt.Sprintf("%s_%d", name, f)
		}
		fmt.Fprintf(&sb, "# TYPE %s %s\n", name, typ)
		var prev []string
		for range rapid.IntRange(1, 4).Draw(t, "series") {
			var ls []string
			if prev != nil && rapid.Bool().Draw(t, "repeat") {
				ls = append(ls, prev...)
				if len(ls) > 0 && rapid.Bool().Draw(t, "change") {
					i := rapid.IntRange(0, len(ls)-1).Draw(t, "changed")
					ls[i] = ls[i][:strings.IndexByte(ls[i], '=')+1] + `"` + rapid.SampledFrom(values).Draw(t, "newvalue") + `"`
				}
			} else {
				for _, n := range names[:rapid.IntRange(0, len(names)).Draw(t, "nlabels")] {
					ls = append(ls, n+`="`+rapid.SampledFrom(values).Draw(t, "value")+`"`)
				}
				if len(ls) > 1 && rapid.IntRange(0, 4).Draw(t, "swap") == 0 {
					ls[0], ls[1] = ls[1], ls[0]
				}
				if len(ls) > 0 && rapid.IntRange(0, 9).Draw(t, "twice") == 0 {
					ls = append(ls, ls[0])
				}
			}
			prev = ls
			with := func(extra string, first bool) string {
				all := append([]string(nil), ls...)
				if extra != "" {
					if first {
						all = append([]string{extra}, all...)
					} else {
						all = append(all, extra)
					}
				}
				return "{" + strings.Join(all, ",") + "}"
			}
			v := float64(scrape + 1)
			switch typ {
			case "counter":
				fmt.Fprintf(&sb, "%s_total%s %g\n", name, with("", false), v*3)
			case "histogram":
				first := rapid.IntRange(0, 4).Draw(t, "lefirst") == 0
				for i, le := range []string{"0.1", "1", "+Inf"} {
					extra := `le="` + le + `"`
					if rapid.IntRange(0, 19).Draw(t, "nole") == 0 {
						extra = ""
					}
					fmt.Fprintf(&sb, "%s_bucket%s %g\n", name, with(extra, first), v*float64(i+1))
				}
				fmt.Fprintf(&sb, "%s_sum%s %g\n%s_count%s %g\n", name, with("", false), v*1.5, name, with("", false), v*3)
			case "summary":
				for _, q := range []string{"0.5", "0.99"} {
					fmt.Fprintf(&sb, "%s%s %g\n", name, with(`quantile="`+q+`"`, false), v)
				}
				fmt.Fprintf(&sb, "%s_sum%s %g\n%s_count%s %g\n", name, with("", false), v*1.5, name, with("", false), v*3)
			}
		}
	}
	return sb.String()
}

// TestTagsCacheChangesNothing converts the same scrapes with and without
// the remembered tag set and requires the same lines, stats and errors:
// reusing the keys of the previous sample is an optimisation only.
func TestTagsCacheChangesNothing(t *testing.T) {
	convertBoth := func(t require.TestingT, schema string, pages []string) {
		var outs [2][]string
		for i, off := range []bool{false, true} {
			c, err := NewConverter(ConvertOptions{
				Schema: schema, Precision: time.Second, SeriesTTL: time.Hour,
				Tags: map[string]string{"host": "h", "a": "static"},
			})
			require.NoError(t, err)
			c.noTagsCache = off
			p := NewParser()
			ts := t0
			for _, page := range pages {
				p.Reset([]byte(page))
				out, st, err := c.Convert(p, ts, nil)
				outs[i] = append(outs[i], fmt.Sprintf("%s%+v %v", out, st, err))
				ts = ts.Add(10 * time.Second)
			}
		}
		require.Equal(t, outs[1], outs[0], "with the cache (got) and without (want)")
	}
	t.Run("generated", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			// Each scrape is drawn anew; the small pools of names and
			// values make most series come back with grown values.
			var pages []string
			for i := range 3 {
				pages = append(pages, genHistogramPage(t, i))
			}
			for _, schema := range []string{"traefik", "telegraf"} {
				convertBoth(t, schema, pages)
			}
		})
	})
	// From protobuf the samples of one metric carry its Series, and the
	// converter takes the remembered tags without comparing them: the same
	// lines as the text page without the cache.
	t.Run("protobuf", func(t *testing.T) {
		convert := func(t require.TestingT, schema string, pages [][]byte, proto bool) []string {
			c, err := NewConverter(ConvertOptions{
				Schema: schema, Precision: time.Second, SeriesTTL: time.Hour,
				Tags: map[string]string{"host": "h", "a": "static"},
			})
			require.NoError(t, err)
			c.noTagsCache = !proto
			var outs []string
			ts := t0
			tp, pp := NewParser(), NewProtoParser()
			for _, page := range pages {
				var src SampleReader = tp
				if proto {
					pp.ResetReader(bytes.NewReader(page))
					src = pp
				} else {
					tp.Reset(page)
				}
				out, st, err := c.Convert(src, ts, nil)
				outs = append(outs, fmt.Sprintf("%s%+v %v", out, st, err))
				ts = ts.Add(10 * time.Second)
			}
			return outs
		}
		both := func(t require.TestingT, text, pb [][]byte) {
			for _, schema := range []string{"traefik", "telegraf"} {
				require.Equal(t, convert(t, schema, text, false), convert(t, schema, pb, true), schema)
			}
		}
		rapid.Check(t, func(t *rapid.T) {
			var text, pb [][]byte
			for range 2 {
				mfs := genRegistryPage(t)
				var b bytes.Buffer
				for _, mf := range mfs {
					_, err := expfmt.MetricFamilyToText(&b, mf)
					require.NoError(t, err)
				}
				text, pb = append(text, b.Bytes()), append(pb, encodeDelimited(t, mfs))
			}
			both(t, text, pb)
		})
		var text, pb [][]byte
		for i := 1; i <= 3; i++ {
			page := traefikpage.Generate(20, i)
			text, pb = append(text, page), append(pb, textToDelimited(t, page))
		}
		both(t, text, pb)
	})
	t.Run("fixtures", func(t *testing.T) {
		pages := readScrapes(t)
		pages = append(pages, string(traefikpage.Generate(20, 1)), string(traefikpage.Generate(20, 2)))
		for _, schema := range []string{"traefik", "telegraf", "prometheus"} {
			convertBoth(t, schema, pages)
		}
	})
}

// TestSameSeriesOddLabels: a histogram metric that carries a label named le
// itself, which client_golang refuses but a protobuf page can hold, is not
// taken for the remembered series by its Series alone: with and without
// the tag cache the lines are the same.
func TestSameSeriesOddLabels(t *testing.T) {
	str := func(s string) *string { return &s }
	f64 := func(v float64) *float64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	metric := func(k uint64, labels ...string) *dto.Metric {
		m := &dto.Metric{Histogram: &dto.Histogram{
			SampleCount: u64(3 * k), SampleSum: f64(1.5 * float64(k)),
			Bucket: []*dto.Bucket{{UpperBound: f64(1), CumulativeCount: u64(2 * k)}},
		}}
		for i := 0; i < len(labels); i += 2 {
			m.Label = append(m.Label, &dto.LabelPair{Name: str(labels[i]), Value: str(labels[i+1])})
		}
		return m
	}
	page := func(k uint64) []byte {
		mf := &dto.MetricFamily{Name: str("traefik_service_request_duration_seconds"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{
			metric(k, "code", "200", "le", "x", "service", "s1"), metric(k, "code", "200", "service", "s2"), metric(k, "code", "", "service", "s3"),
		}}
		return encodeDelimited(t, []*dto.MetricFamily{mf})
	}
	for _, schema := range []string{"traefik", "telegraf"} {
		var outs [2]string
		for i, off := range []bool{false, true} {
			c, err := NewConverter(ConvertOptions{Schema: schema, Precision: time.Second, SeriesTTL: time.Hour})
			require.NoError(t, err)
			c.noTagsCache = off
			p := NewProtoParser()
			for k := range 2 {
				p.ResetReader(bytes.NewReader(page(uint64(k + 1))))
				out, st, err := c.Convert(p, t0.Add(time.Duration(k)*10*time.Second), nil)
				outs[i] += fmt.Sprintf("%s%+v %v\n", out, st, err)
			}
		}
		require.Equal(t, outs[1], outs[0], schema)
		require.Contains(t, outs[0], `service=s1`, schema)
	}
}
