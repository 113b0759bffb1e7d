package collector

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// counterPage is a page of one counter family with a series per name, each
// at value v.
func counterPage(v int, names ...string) string {
	var b strings.Builder
	b.WriteString("# TYPE c counter\n")
	for _, n := range names {
		fmt.Fprintf(&b, "c_total{s=%q} %d\n", n, v)
	}
	return b.String()
}

func TestConvertMaxSeries(t *testing.T) {
	c := newTestConverter(t, "traefik", func(o *ConvertOptions) { o.MaxSeries = 2; o.SeriesTTL = time.Minute })
	_, st := convertPage(t, c, counterPage(10, "a", "b", "c"), t0)
	require.Equal(t, 1, st.Skipped[SkipSeriesLimit], "the third series is one over the bound")
	require.Equal(t, 2, c.stateSeries())

	out, st := convertPage(t, c, counterPage(15, "a", "b", "c"), t0.Add(10*time.Second))
	require.Equal(t, 1, st.Skipped[SkipSeriesLimit])
	require.Equal(t, "c.total,host=test,s=a count=5 1700000010\nc.total,host=test,s=b count=5 1700000010\n", string(out),
		"the series remembered go on; the one over the bound writes nothing rather than a wrong count")

	// b leaves the page; once it has expired there is room for c, whose
	// first scrape in the state is its baseline.
	var at time.Time
	for d := 20 * time.Second; d <= 2*time.Minute; d += 10 * time.Second {
		at = t0.Add(d)
		convertPage(t, c, counterPage(20, "a", "c"), at)
	}
	require.Equal(t, 2, c.stateSeries())
	out, st = convertPage(t, c, counterPage(30, "a", "c"), at.Add(10*time.Second))
	require.Zero(t, st.Skipped[SkipSeriesLimit])
	pts := byID(t, decodeLP(t, out))
	require.Equal(t, 10.0, pts["c.total,host=test,s=a"].fields["count"])
	require.Equal(t, 10.0, pts["c.total,host=test,s=c"].fields["count"], "c counts from the value it had when it got in")

	_, err := NewConverter(ConvertOptions{Schema: "traefik", Precision: time.Second, MaxSeries: -1})
	require.Error(t, err)
}

// TestConverterCompaction makes series come and go until the state is
// compacted, and checks that what remains still counts exactly, saves and
// restores, and that names no series uses are gone.
func TestConverterCompaction(t *testing.T) {
	c := newTestConverter(t, "traefik", func(o *ConvertOptions) { o.SeriesTTL = time.Minute })
	ts := t0
	keep := []string{"k1", "k2"}
	// Each scrape brings 200 series with a label name of their own, gone
	// by the next one.
	for r := 0; r < 40; r++ {
		var b strings.Builder
		b.WriteString(counterPage(10*r, keep...))
		fmt.Fprintf(&b, "# TYPE h histogram\n")
		for i := 0; i < 200; i++ {
			name := fmt.Sprintf("x%d_%d", r, i)
			fmt.Fprintf(&b, "h_bucket{%s=\"v\",le=\"1\"} 1\nh_bucket{%s=\"v\",le=\"+Inf\"} 2\nh_sum{%s=\"v\"} 3\nh_count{%s=\"v\"} 2\n", name, name, name, name)
		}
		out, _ := convertPage(t, c, b.String(), ts)
		if r > 0 {
			pts := byID(t, decodeLP(t, out))
			require.Equal(t, 10.0, pts["c.total,host=test,s=k1"].fields["count"], "scrape %d", r)
			require.Equal(t, 10.0, pts["c.total,host=test,s=k2"].fields["count"], "scrape %d", r)
		}
		ts = ts.Add(10 * time.Second)
	}
	// Series live a minute; sweeps run every quarter of it.
	require.LessOrEqual(t, c.stateSeries(), 2+200*8)
	require.LessOrEqual(t, len(c.st.names), 4+200*8, "names of forgotten series are dropped (c, c.total, s, h are the others)")
	require.Zero(t, c.st.garbage)

	saved, err := c.MarshalState()
	require.NoError(t, err)
	d := newTestConverter(t, "traefik", func(o *ConvertOptions) { o.SeriesTTL = time.Minute })
	require.NoError(t, d.UnmarshalState(saved))
	again, err := d.MarshalState()
	require.NoError(t, err)
	require.Equal(t, saved, again)
	outC, _ := convertPage(t, c, counterPage(1000, keep...), ts)
	outD, _ := convertPage(t, d, counterPage(1000, keep...), ts)
	require.Equal(t, string(outC), string(outD))
	require.Equal(t, "c.total,host=test,s=k1 count=610 1700000400\nc.total,host=test,s=k2 count=610 1700000400\n", string(outC))
}

// TestConverterLayoutChanges changes a histogram's buckets on every scrape:
// each change starts the series afresh, and the values left behind do not
// pile up.
func TestConverterLayoutChanges(t *testing.T) {
	c := newTestConverter(t, "traefik", func(o *ConvertOptions) { o.SeriesTTL = 0 })
	ts := t0
	for r := 1; r <= 6000; r++ {
		var b strings.Builder
		b.WriteString("# TYPE h histogram\n")
		n := 1 + r%7
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "h_bucket{le=\"%d\"} %d\n", i+1, r)
		}
		fmt.Fprintf(&b, "h_bucket{le=\"+Inf\"} %d\nh_sum %d\nh_count %d\n", r, r, r)
		out, _ := convertPage(t, c, b.String(), ts)
		if r > 1 {
			// A new layout: the whole count is the increase.
			require.Contains(t, string(out), fmt.Sprintf("h,host=test count=%d,", r), "scrape %d", r)
		}
		ts = ts.Add(time.Second)
	}
	require.Less(t, 8*len(c.st.vals)+len(c.st.keys), 1<<17, "values of old layouts are compacted away")
}

// TestConverterTypeChange turns a counter into a histogram and back: the
// series (same measurement and tags) starts afresh at each change.
func TestConverterTypeChange(t *testing.T) {
	c := newTestConverter(t, "traefik")
	convertPage(t, c, "# TYPE m counter\nm 5\n", t0)
	hist := "# TYPE m histogram\nm_bucket{le=\"1\"} 2\nm_bucket{le=\"+Inf\"} 3\nm_sum 4\nm_count 3\n"
	out, _ := convertPage(t, c, hist, t0.Add(10*time.Second))
	require.Equal(t, "m,host=test count=3,p50=0.75,p90=1,p95=1,p99=1,sum=4 1700000010\n", string(out))
	out, _ = convertPage(t, c, "# TYPE m counter\nm 7\n", t0.Add(20*time.Second))
	require.Equal(t, "m,host=test count=7 1700000020\n", string(out))
	out, _ = convertPage(t, c, "# TYPE m counter\nm 9\n", t0.Add(30*time.Second))
	require.Equal(t, "m,host=test count=2 1700000030\n", string(out))
	require.Equal(t, 1, c.stateSeries())
}

// TestStateKeysExact checks that series told apart only by where their
// label values end, or by label names, have keys of their own.
func TestStateKeysExact(t *testing.T) {
	c := newTestConverter(t, "traefik")
	page := func(v int) string {
		return fmt.Sprintf("# TYPE c counter\nc_total{a=\"x\",b=\"yz\"} %d\nc_total{a=\"xy\",b=\"z\"} %d\nc_total{a=\"x\",c=\"yz\"} %d\nc_total{a=\"xé\",b=\"yz\"} %d\n", v, 2*v, 3*v, 4*v)
	}
	convertPage(t, c, page(1), t0)
	require.Equal(t, 4, c.stateSeries())
	out, _ := convertPage(t, c, page(2), t0.Add(10*time.Second))
	pts := decodeLP(t, out)
	require.Len(t, pts, 4)
	sum := 0.0
	for _, p := range pts {
		sum += p.fields["count"]
	}
	require.Equal(t, 1.0+2+3+4, sum)
	require.False(t, math.IsNaN(sum))
}
