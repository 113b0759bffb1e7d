package collector

import (
	"fmt"
	"strings"
	"testing"
	"time"

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
	t.Run("fixtures", func(t *testing.T) {
		pages := readScrapes(t)
		pages = append(pages, string(traefikpage.Generate(20, 1)), string(traefikpage.Generate(20, 2)))
		for _, schema := range []string{"traefik", "telegraf", "prometheus"} {
			convertBoth(t, schema, pages)
		}
	})
}
