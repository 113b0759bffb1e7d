package collector

import (
	"bytes"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/stretchr/testify/require"
)

// t0 is a fixed scrape time: 2023-11-14T22:13:20Z.
var t0 = time.Unix(1700000000, 0)

// point is one decoded line-protocol line.
type point struct {
	meas   string
	tags   map[string]string
	fields map[string]float64
	ts     int64
}

// id is the series key in a readable form: measurement,k=v,... sorted.
func (p point) id() string {
	keys := make([]string, 0, len(p.tags))
	for k := range p.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(p.meas)
	for _, k := range keys {
		b.WriteString("," + k + "=" + p.tags[k])
	}
	return b.String()
}

// decodeLP reads line protocol with the reference decoder, failing the test
// on anything it rejects, on an unsorted tag set and on a non-float field.
func decodeLP(t *testing.T, lp []byte) []point {
	t.Helper()
	var pts []point
	dec := lineprotocol.NewDecoderWithBytes(lp)
	for dec.Next() {
		m, err := dec.Measurement()
		require.NoError(t, err)
		p := point{meas: string(m), tags: map[string]string{}, fields: map[string]float64{}}
		prev := ""
		for {
			k, v, err := dec.NextTag()
			require.NoError(t, err)
			if k == nil {
				break
			}
			require.Greater(t, string(k), prev, "tags must be sorted in %s", m)
			prev = string(k)
			p.tags[string(k)] = string(v)
		}
		for {
			k, v, err := dec.NextField()
			require.NoError(t, err)
			if k == nil {
				break
			}
			require.Equal(t, lineprotocol.Float, v.Kind(), "field %s of %s must be a float", k, m)
			p.fields[string(k)] = v.FloatV()
		}
		ts, err := dec.TimeBytes()
		require.NoError(t, err)
		require.NotEmpty(t, ts, "every line carries a timestamp")
		p.ts = mustInt(t, string(ts))
		pts = append(pts, p)
	}
	return pts
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	for _, c := range s {
		require.True(t, c >= '0' && c <= '9', "timestamp %q", s)
		n = n*10 + int64(c-'0')
	}
	return n
}

// byID indexes points by series, failing on a series written twice.
func byID(t *testing.T, pts []point) map[string]point {
	t.Helper()
	m := make(map[string]point, len(pts))
	for _, p := range pts {
		_, dup := m[p.id()]
		require.False(t, dup, "series %s written twice in one scrape", p.id())
		m[p.id()] = p
	}
	return m
}

func newTestConverter(t *testing.T, schema string, mod ...func(*ConvertOptions)) *Converter {
	t.Helper()
	opts := ConvertOptions{Schema: schema, Precision: time.Second, Tags: map[string]string{"host": "test"}, SeriesTTL: time.Hour}
	for _, f := range mod {
		f(&opts)
	}
	c, err := NewConverter(opts)
	require.NoError(t, err)
	return c
}

// convertPage parses page with the real parser and converts it.
func convertPage(t *testing.T, c *Converter, page string, ts time.Time) ([]byte, ConvertStats) {
	t.Helper()
	p := NewParser()
	p.Reset([]byte(page))
	out, st, err := c.Convert(p, ts, nil)
	require.NoError(t, err)
	return out, st
}

func TestConvertCounters(t *testing.T) {
	page := func(start string, vals ...string) string {
		s := "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds " + start + "\n" +
			"# TYPE traefik_service_requests_total counter\n"
		for i := 0; i+1 < len(vals); i += 2 {
			s += `traefik_service_requests_total{code="200",service="` + vals[i] + `"} ` + vals[i+1] + "\n"
		}
		return s
	}
	c := newTestConverter(t, "traefik", func(o *ConvertOptions) { o.Include = []string{"traefik_*"} })
	steps := []struct {
		name string
		page string
		want string
	}{
		{"first scrape is a baseline", page("100", "a", "10", "b", "5"), ""},
		{"increase, no increase, new series from zero", page("100", "a", "15", "b", "5", "c", "3"),
			"traefik.service.requests.total,code=200,host=test,service=a count=5 1700000010\n" +
				"traefik.service.requests.total,code=200,host=test,service=c count=3 1700000010\n"},
		{"a counter that went down was reset", page("100", "a", "2", "b", "7", "c", "3"),
			"traefik.service.requests.total,code=200,host=test,service=a count=2 1700000020\n" +
				"traefik.service.requests.total,code=200,host=test,service=b count=2 1700000020\n"},
		{"a new process start resets every series", page("200", "a", "4", "b", "9", "c", "3"),
			"traefik.service.requests.total,code=200,host=test,service=a count=4 1700000030\n" +
				"traefik.service.requests.total,code=200,host=test,service=b count=9 1700000030\n" +
				"traefik.service.requests.total,code=200,host=test,service=c count=3 1700000030\n"},
		{"after the restart, increases again", page("200", "a", "4", "b", "10", "c", "3"),
			"traefik.service.requests.total,code=200,host=test,service=b count=1 1700000040\n"},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out, st := convertPage(t, c, s.page, t0.Add(time.Duration(i)*10*time.Second))
			require.Equal(t, s.want, string(out))
			require.Equal(t, strings.Count(s.want, "\n"), st.Points)
			decodeLP(t, out)
		})
	}
}

func TestConvertHistogram(t *testing.T) {
	page := func(count, sum string, buckets ...string) string {
		les := []string{"0.1", "0.3", "1.2", "5", "+Inf"}
		s := "# TYPE traefik_service_request_duration_seconds histogram\n"
		for i, b := range buckets {
			s += `traefik_service_request_duration_seconds_bucket{service="a",le="` + les[i] + `"} ` + b + "\n"
		}
		s += `traefik_service_request_duration_seconds_sum{service="a"} ` + sum + "\n"
		s += `traefik_service_request_duration_seconds_count{service="a"} ` + count + "\n"
		return s
	}
	const id = "traefik.service.request.duration,host=test,service=a"
	c := newTestConverter(t, "traefik")
	// Expected values worked out by hand from the bucket increases:
	// quantile q has rank q*total; inside bucket (lo, hi] holding n of the
	// increases with c below it, the estimate is lo + (hi-lo)*(rank-c)/n.
	steps := []struct {
		name   string
		page   string
		fields map[string]float64 // nil: no point
	}{
		{"baseline", page("4", "2", "1", "2", "3", "4", "4"), nil},
		// Increases 10,10,20,20,20 (per bucket 10,0,10,0,0). p50: rank 10
		// in the first bucket: 0.1*10/10. p90: rank 18 in (0.3,1.2] with
		// 10 below and 10 in it: 0.3+0.9*8/10.
		{"increase", page("24", "12", "11", "12", "23", "24", "24"),
			map[string]float64{"count": 20, "sum": 10, "p50": 0.1, "p90": 1.02, "p95": 1.11, "p99": 1.182}},
		{"no increase, no point", page("24", "12", "11", "12", "23", "24", "24"), nil},
		// Six observations above 5s: every rank falls in the +Inf bucket,
		// which answers the highest finite bound.
		{"all in +Inf", page("30", "52", "11", "12", "23", "24", "30"),
			map[string]float64{"count": 6, "sum": 40, "p50": 5, "p90": 5, "p95": 5, "p99": 5}},
		// Count went down: reset, the increase is the whole histogram
		// 1,2,3,3,3. p50: rank 1.5 in (0.1,0.3]: 0.1+0.2*0.5/1.
		{"reset", page("3", "0.5", "1", "2", "3", "3", "3"),
			map[string]float64{"count": 3, "sum": 0.5, "p50": 0.2, "p90": 0.93, "p95": 1.065, "p99": 1.173}},
		// Only a bucket went down (a reset with a count that grew): the
		// increases are 0,2,3,5,5. p90: rank 4.5 in (1.2,5] holding 2 with
		// 3 below: 1.2+3.8*1.5/2.
		{"a bucket going down is a reset", page("5", "1", "0", "2", "3", "5", "5"),
			map[string]float64{"count": 5, "sum": 1, "p50": 0.75, "p90": 4.05, "p95": 4.525, "p99": 4.905}},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out, _ := convertPage(t, c, s.page, t0.Add(time.Duration(i)*10*time.Second))
			pts := byID(t, decodeLP(t, out))
			if s.fields == nil {
				require.Empty(t, pts)
				return
			}
			require.Len(t, pts, 1)
			p, ok := pts[id]
			require.True(t, ok, "got %s", out)
			require.Len(t, p.fields, len(s.fields), "fields of %s", out)
			for k, v := range s.fields {
				require.InDelta(t, v, p.fields[k], 1e-9, "field %s", k)
			}
		})
	}
}

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name   string
		q      float64
		bounds []float64
		counts []float64
		want   float64
	}{
		{"middle of first bucket", 0.5, []float64{1, inf}, []float64{10, 10}, 0.5},
		{"upper edge of a bucket", 0.5, []float64{1, 2, inf}, []float64{5, 10, 10}, 1},
		{"interpolated in second", 0.75, []float64{1, 2, inf}, []float64{5, 10, 10}, 1.5},
		{"+Inf bucket answers highest finite bound", 0.99, []float64{1, 2, inf}, []float64{5, 5, 10}, 2},
		{"negative first bound is returned as is", 0.1, []float64{-1, 2, inf}, []float64{5, 5, 5}, -1},
		{"empty histogram", 0.5, []float64{1, inf}, []float64{0, 0}, math.NaN()},
		{"no +Inf bucket", 0.5, []float64{1, 2}, []float64{1, 2}, math.NaN()},
		{"only +Inf bucket", 0.5, []float64{inf}, []float64{3}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bucketQuantile(tt.q, tt.bounds, tt.counts)
			if math.IsNaN(tt.want) {
				require.True(t, math.IsNaN(got), "got %v", got)
				return
			}
			require.InDelta(t, tt.want, got, 1e-12)
		})
	}
}

func TestConvertGaugesEveryScrape(t *testing.T) {
	page := "# TYPE traefik_open_connections gauge\ntraefik_open_connections{entrypoint=\"web\",protocol=\"TCP\"} 3\n" +
		"untyped_thing 7\n"
	c := newTestConverter(t, "traefik", func(o *ConvertOptions) { o.Include = nil })
	for i := range 2 {
		out, _ := convertPage(t, c, page, t0.Add(time.Duration(i)*time.Second))
		ts := "170000000" + string(rune('0'+i))
		require.Equal(t,
			"traefik.open.connections,entrypoint=web,host=test,protocol=TCP value=3 "+ts+"\n"+
				"untyped.thing,host=test value=7 "+ts+"\n", string(out))
	}
}

func TestLineProtocolEscaping(t *testing.T) {
	values := []string{
		"plain", "with space", "with,comma", "with=equals", `with"quote`, `with\backslash`,
		`\,`, `a\ b`, `a\=b`, `\\a`, "ünïcödé 日本", " leading", "trailing ", "=", ",", " ",
	}
	var page strings.Builder
	page.WriteString("# TYPE m gauge\n")
	for i, v := range values {
		esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)
		page.WriteString(`m{i="` + string(rune('a'+i)) + `",v="` + esc + `"} 1` + "\n")
	}
	for _, schema := range []string{"traefik", "prometheus", "telegraf"} {
		t.Run(schema, func(t *testing.T) {
			c := newTestConverter(t, schema, func(o *ConvertOptions) { o.Tags = map[string]string{"z z": "x,y=z"} })
			out, st := convertPage(t, c, page.String(), t0)
			pts := decodeLP(t, out)
			require.Len(t, pts, len(values))
			require.Equal(t, len(values), st.Points)
			for i, p := range pts {
				require.Equal(t, string(rune('a'+i)), p.tags["i"])
				require.Equal(t, values[i], p.tags["v"], "line %d", i)
				require.Equal(t, "x,y=z", p.tags["z z"])
			}
		})
	}
}

func TestConvertSkips(t *testing.T) {
	tests := []struct {
		name   string
		sample string
		reason SkipReason
	}{
		{"NaN", `m{a="1"} NaN`, SkipNaN},
		{"+Inf", `m{a="1"} +Inf`, SkipInf},
		{"-Inf", `m{a="1"} -Inf`, SkipInf},
		{"trailing backslash", `m{a="x\\"} 1`, SkipInvalidLabel},
		{"newline", `m{a="x\ny"} 1`, SkipInvalidLabel},
		{"tab", "m{a=\"x\ty\"} 1", SkipInvalidLabel},
	}
	for _, tt := range tests {
		for _, schema := range []string{"traefik", "prometheus", "telegraf"} {
			t.Run(tt.name+"/"+schema, func(t *testing.T) {
				c := newTestConverter(t, schema)
				out, st := convertPage(t, c, "# TYPE m gauge\n"+tt.sample+"\nm{a=\"ok\"} 2\n", t0)
				pts := decodeLP(t, out)
				require.Len(t, pts, 1, "the good sample is still written: %s", out)
				require.Equal(t, "ok", pts[0].tags["a"])
				var want [NumSkipReasons]int
				want[tt.reason] = 1
				require.Equal(t, want, st.Skipped)
				require.Equal(t, 2, st.Samples)
			})
		}
	}
}

// TestConvertEmptyLabels: an empty label value is an absent label in
// Prometheus (Traefik writes cn="" for a certificate without a common
// name), so the sample is written without it, and the label is counted.
func TestConvertEmptyLabels(t *testing.T) {
	cert := "# TYPE traefik_tls_certs_not_after gauge\n" + `traefik_tls_certs_not_after{cn="",sans="a.example",serial="1f"} 1.8e+09` + "\n"
	tests := []struct {
		name      string
		schema    string
		pages     []string // converted in turn, 10s apart; the last is checked
		want      string
		wantEmpty int
	}{
		{"gauge, traefik", "traefik", []string{cert},
			"traefik.tls.certs.notAfterTimestamp,host=test,sans=a.example,serial=1f value=1.8e+09 1700000000\n", 1},
		{"gauge, prometheus", "prometheus", []string{cert},
			"traefik_tls_certs_not_after,host=test,sans=a.example,serial=1f value=1.8e+09 1700000000\n", 1},
		{"gauge, telegraf", "telegraf", []string{cert},
			"traefik_tls_certs_not_after,host=test,sans=a.example,serial=1f,url=http://traefik:9100/metrics gauge=1.8e+09 1700000000\n", 1},
		{"two empty labels", "prometheus", []string{"# TYPE traefik_g gauge\n" + `traefik_g{a="",b="x",c=""} 1` + "\n"},
			"traefik_g,b=x,host=test value=1 1700000000\n", 2},
		{"counter keeps its increases", "traefik", []string{
			"# TYPE traefik_c counter\n" + `traefik_c{a="",b="x"} 3` + "\n",
			"# TYPE traefik_c counter\n" + `traefik_c{a="",b="x"} 5` + "\n",
		}, "traefik.c,b=x,host=test count=2 1700000010\n", 1},
		{"a host label left empty takes the static host tag", "prometheus", []string{"# TYPE traefik_g gauge\n" + `traefik_g{host=""} 1` + "\n"},
			"traefik_g,host=test value=1 1700000000\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestConverter(t, tt.schema, func(o *ConvertOptions) { o.URL = "http://traefik:9100/metrics" })
			var out []byte
			var st ConvertStats
			for i, p := range tt.pages {
				out, st = convertPage(t, c, p, t0.Add(time.Duration(i)*10*time.Second))
			}
			require.Equal(t, tt.want, string(out))
			require.Equal(t, tt.wantEmpty, st.EmptyLabels)
			require.Equal(t, [NumSkipReasons]int{}, st.Skipped)
		})
	}
}

func TestConvertStaticTags(t *testing.T) {
	withURL := "# TYPE traefik_service_server_up gauge\n" +
		`traefik_service_server_up{host="from-label",service="s",url="http://10.0.0.1:80"} 1` + "\n"
	withoutURL := "# TYPE traefik_open_connections gauge\n" +
		`traefik_open_connections{entrypoint="web",protocol="TCP"} 2` + "\n"
	tests := []struct {
		name, schema, url, page, want string
	}{
		{"scraped label wins over static tag", "traefik", "", withURL,
			"traefik.service.server.up,env=prod,host=from-label,instance=10.0.0.9:9100,service=s,url=http://10.0.0.1:80 value=1 1700000000\n"},
		{"prometheus schema", "prometheus", "", withURL,
			"traefik_service_server_up,env=prod,host=from-label,instance=10.0.0.9:9100,service=s,url=http://10.0.0.1:80 value=1 1700000000\n"},
		{"telegraf url tag, credentials stripped", "telegraf", "http://user:secret@10.0.0.9:9100/metrics", withoutURL,
			"traefik_open_connections,entrypoint=web,env=prod,host=pod-1,instance=10.0.0.9:9100,protocol=TCP,url=http://10.0.0.9:9100/metrics gauge=2 1700000000\n"},
		// Telegraf would set its url tag over the label, merging the
		// servers of a service into one series; here the label wins.
		{"telegraf: scraped url label wins over the url tag", "telegraf", "http://10.0.0.9:9100/metrics", withURL,
			"traefik_service_server_up,env=prod,host=from-label,instance=10.0.0.9:9100,service=s,url=http://10.0.0.1:80 gauge=1 1700000000\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestConverter(t, tt.schema, func(o *ConvertOptions) {
				o.Tags = map[string]string{"host": "pod-1", "instance": "10.0.0.9:9100", "env": "prod"}
				o.URL = tt.url
			})
			out, _ := convertPage(t, c, tt.page, t0)
			require.Equal(t, tt.want, string(out))
		})
	}
}

func TestConvertTimestamps(t *testing.T) {
	page := "# TYPE g gauge\ng 1\n"
	tests := []struct {
		name      string
		precision time.Duration
		times     []time.Time
		want      []string
	}{
		{"seconds truncate", time.Second, []time.Time{t0.Add(999 * time.Millisecond)}, []string{"1700000000"}},
		{"milliseconds", time.Millisecond, []time.Time{t0.Add(123456789)}, []string{"1700000000123"}},
		{"microseconds", time.Microsecond, []time.Time{t0.Add(123456789)}, []string{"1700000000123456"}},
		{"nanoseconds", time.Nanosecond, []time.Time{t0.Add(123456789)}, []string{"1700000000123456789"}},
		{"same second twice moves on by one unit", time.Second,
			[]time.Time{t0, t0.Add(500 * time.Millisecond), t0.Add(time.Second)},
			[]string{"1700000000", "1700000001", "1700000002"}},
		{"clock going back never repeats a timestamp", time.Millisecond,
			[]time.Time{t0, t0.Add(-time.Minute)}, []string{"1700000000000", "1700000000001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestConverter(t, "traefik", func(o *ConvertOptions) { o.Precision = tt.precision })
			for i, ts := range tt.times {
				out, _ := convertPage(t, c, page, ts)
				require.Equal(t, "g,host=test value=1 "+tt.want[i]+"\n", string(out))
			}
		})
	}
}

func TestConvertIncludeExclude(t *testing.T) {
	page := func(start, v string) string {
		return "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds " + start + "\n" +
			"# TYPE traefik_router_requests_total counter\ntraefik_router_requests_total{router=\"r\"} " + v + "\n" +
			"# TYPE traefik_service_requests_total counter\ntraefik_service_requests_total{service=\"s\"} " + v + "\n"
	}
	c := newTestConverter(t, "traefik", func(o *ConvertOptions) {
		o.Include = []string{"traefik_*"}
		o.Exclude = []string{"traefik_router_*"}
	})
	out, st := convertPage(t, c, page("100", "10"), t0)
	require.Empty(t, out)
	require.Equal(t, ConvertStats{Samples: 3, Ignored: 2}, st)
	// process_start_time_seconds is not written but still detects the
	// restart: 10 -> 12 counts 12, not 2.
	out, st = convertPage(t, c, page("200", "12"), t0.Add(10*time.Second))
	require.Equal(t, "traefik.service.requests.total,host=test,service=s count=12 1700000010\n", string(out))
	require.Equal(t, ConvertStats{Samples: 3, Ignored: 2, Points: 1}, st)
}

func TestConvertSeriesTTL(t *testing.T) {
	both := "# TYPE c counter\nc{s=\"a\"} 10\nc{s=\"b\"} 10\n"
	onlyA := func(v string) string { return "# TYPE c counter\nc{s=\"a\"} " + v + "\n" }
	back := "# TYPE c counter\nc{s=\"a\"} 20\nc{s=\"b\"} 13\n"
	tests := []struct {
		name  string
		gap   time.Duration // how long b is away
		wantB float64
	}{
		{"back within the TTL: the increase", 30 * time.Second, 3},
		{"back after the TTL: counts from zero", 3 * time.Minute, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestConverter(t, "traefik", func(o *ConvertOptions) { o.SeriesTTL = time.Minute; o.Include = nil })
			convertPage(t, c, both, t0)
			for d := 10 * time.Second; d <= tt.gap; d += 10 * time.Second {
				convertPage(t, c, onlyA(strconv.Itoa(10+int(d/time.Second))), t0.Add(d))
			}
			out, _ := convertPage(t, c, back, t0.Add(tt.gap+10*time.Second))
			pts := byID(t, decodeLP(t, out))
			require.Equal(t, tt.wantB, pts["c,host=test,s=b"].fields["count"])
		})
	}
}

func TestConverterState(t *testing.T) {
	pages := readScrapes(t)
	a := newTestConverter(t, "traefik")
	convertPage(t, a, pages[0], t0)
	convertPage(t, a, pages[1], t0.Add(10*time.Second))
	saved, err := a.MarshalState()
	require.NoError(t, err)

	b := newTestConverter(t, "traefik")
	require.NoError(t, b.UnmarshalState(saved))
	again, err := b.MarshalState()
	require.NoError(t, err)
	require.Equal(t, saved, again, "a restored state saves to the same bytes")

	outA, _ := convertPage(t, a, pages[2], t0.Add(20*time.Second))
	outB, _ := convertPage(t, b, pages[2], t0.Add(20*time.Second))
	require.NotEmpty(t, outA)
	require.Equal(t, string(outA), string(outB), "a restored converter continues where the saved one was")

	t.Run("timestamp stays strictly increasing across a restore", func(t *testing.T) {
		c := newTestConverter(t, "traefik")
		require.NoError(t, c.UnmarshalState(saved))
		out, _ := convertPage(t, c, "# TYPE g gauge\ng 1\n", t0) // clock behind the saved state
		require.Equal(t, "g,host=test value=1 1700000011\n", string(out))
	})
	t.Run("damaged state is an error and changes nothing", func(t *testing.T) {
		before, err := b.MarshalState()
		require.NoError(t, err)
		for n := 0; n < len(saved); n++ {
			require.Error(t, b.UnmarshalState(saved[:n]), "prefix of %d bytes", n)
		}
		bad := bytes.Clone(saved)
		bad[4] = 99
		require.Error(t, b.UnmarshalState(bad), "unknown version")
		require.Error(t, b.UnmarshalState(append(bytes.Clone(saved), 0)), "trailing byte")
		after, err := b.MarshalState()
		require.NoError(t, err)
		require.Equal(t, before, after)
	})
}

func TestNewConverterErrors(t *testing.T) {
	ok := ConvertOptions{Schema: "traefik", Precision: time.Second}
	tests := []struct {
		name string
		mod  func(*ConvertOptions)
	}{
		{"unknown schema", func(o *ConvertOptions) { o.Schema = "graphite" }},
		{"odd precision", func(o *ConvertOptions) { o.Precision = time.Minute }},
		{"bad glob", func(o *ConvertOptions) { o.Include = []string{"["} }},
		{"empty tag value", func(o *ConvertOptions) { o.Tags = map[string]string{"a": ""} }},
		{"newline in tag", func(o *ConvertOptions) { o.Tags = map[string]string{"a": "x\ny"} }},
		{"negative TTL", func(o *ConvertOptions) { o.SeriesTTL = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			_, err := NewConverter(o)
			require.Error(t, err)
		})
	}
	_, err := NewConverter(ok)
	require.NoError(t, err)
}

func TestAppendEscaped(t *testing.T) {
	tests := []struct {
		name, in, want string
		meas, ok       bool
	}{
		{"plain", "abc", "abc", false, true},
		{"tag specials", "a b,c=d", `a\ b\,c\=d`, false, true},
		{"measurement keeps =", "a b,c=d", `a\ b\,c=d`, true, true},
		{"inner backslash is literal", `a\b`, `a\b`, false, true},
		{"UTF-8", "日本", "日本", false, true},
		{"trailing backslash", `a\`, "", false, false},
		{"newline", "a\nb", "", false, false},
		{"DEL", "a\x7fb", "", false, false},
		{"invalid UTF-8", "a\xffb", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cls := &tagClass
			if tt.meas {
				cls = &measClass
			}
			got, ok := appendEscaped([]byte("x"), []byte(tt.in), cls)
			require.Equal(t, tt.ok, ok)
			if ok {
				require.Equal(t, "x"+tt.want, string(got))
			}
		})
	}
}

// FuzzConvert checks that whatever page the parser accepts, every schema
// writes line protocol the reference decoder reads, with float fields only.
func FuzzConvert(f *testing.F) {
	// Whole fixtures (tens of KB) make the fuzzer crawl; pieces of a few
	// KB cut at family boundaries keep the shapes that matter.
	for _, p := range readScrapes(f) {
		for _, piece := range fuzzPieces(p) {
			f.Add([]byte(piece))
		}
	}
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"))
	f.Add([]byte("# TYPE s summary\ns{quantile=\"0.5\",a=\"x y\"} 1\ns_sum 3\ns_count 2\n"))
	f.Fuzz(func(t *testing.T, page []byte) {
		for _, schema := range []string{"traefik", "prometheus", "telegraf"} {
			c, err := NewConverter(ConvertOptions{Schema: schema, Precision: time.Second, Tags: map[string]string{"host": "h"}, URL: "http://x:1/m"})
			require.NoError(t, err)
			p := NewParser()
			for i := range 2 {
				p.Reset(page)
				out, st, err := c.Convert(p, t0.Add(time.Duration(i)*time.Second), nil)
				pts := decodeLP(t, out)
				require.Equal(t, st.Points, len(pts))
				if err != nil {
					return
				}
			}
		}
	})
}

func FuzzUnmarshalState(f *testing.F) {
	c, err := NewConverter(ConvertOptions{Schema: "traefik", Precision: time.Second})
	require.NoError(f, err)
	pages := readScrapes(f)
	// States of small pages: a state of a whole fixture is tens of KB,
	// which makes the fuzzer crawl.
	for i, page := range fuzzPieces(pages[0])[:4] {
		p := NewParser()
		p.Reset([]byte(page))
		_, _, err := c.Convert(p, t0.Add(time.Duration(i)*time.Second), nil)
		require.NoError(f, err)
		b, err := c.MarshalState()
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := NewConverter(ConvertOptions{Schema: "traefik", Precision: time.Second})
		require.NoError(t, err)
		if c.UnmarshalState(b) != nil {
			return
		}
		// A state that loads saves to bytes that load to the same state,
		// and converts.
		again, err := c.MarshalState()
		require.NoError(t, err)
		require.NoError(t, c.UnmarshalState(again))
		third, err := c.MarshalState()
		require.NoError(t, err)
		require.Equal(t, again, third)
		p := NewParser()
		p.Reset([]byte(pages[1]))
		out, _, err := c.Convert(p, t0, nil)
		require.NoError(t, err)
		decodeLP(t, out)
	})
}

// TestConvertSeriesOrder changes the order and the set of series between
// scrapes: each increase must still be taken against its own series.
func TestConvertSeriesOrder(t *testing.T) {
	page := func(kv ...string) string {
		s := "# TYPE c counter\n"
		for i := 0; i < len(kv); i += 2 {
			s += `c{s="` + kv[i] + `"} ` + kv[i+1] + "\n"
		}
		return s
	}
	c := newTestConverter(t, "traefik")
	steps := []struct {
		name string
		page string
		want map[string]float64
	}{
		{"baseline", page("a", "1", "b", "10", "c", "100"), map[string]float64{}},
		{"reordered, one new", page("c", "103", "a", "2", "d", "5", "b", "10"),
			map[string]float64{"a": 1, "c": 3, "d": 5}},
		{"one gone, back to the first order", page("a", "4", "b", "11", "c", "103"),
			map[string]float64{"a": 2, "b": 1}},
		{"the one gone is back", page("a", "4", "b", "11", "c", "103", "d", "7"),
			map[string]float64{"d": 2}},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out, _ := convertPage(t, c, s.page, t0.Add(time.Duration(i)*10*time.Second))
			got := map[string]float64{}
			for _, p := range decodeLP(t, out) {
				got[p.tags["s"]] = p.fields["count"]
			}
			require.Equal(t, s.want, got)
		})
	}
}

// TestConvertParseError: the lines of the samples before a parse error come
// back with the error; a histogram cut by it is neither written nor
// remembered; a failed first scrape is not the baseline.
func TestConvertParseError(t *testing.T) {
	good := func(c, h string) string {
		return "# TYPE a counter\na " + c + "\n# TYPE h histogram\n" +
			`h_bucket{le="1"} ` + h + "\n" + `h_bucket{le="+Inf"} ` + h + "\nh_sum " + h + "\nh_count " + h + "\n"
	}
	cut := func(c, h string) string {
		return "# TYPE a counter\na " + c + "\n# TYPE h histogram\n" + `h_bucket{le="1"} ` + h + "\nthis is not { a sample\n"
	}
	conv := func(t *testing.T, c *Converter, page string, i int) (string, error) {
		p := NewParser()
		p.Reset([]byte(page))
		out, _, err := c.Convert(p, t0.Add(time.Duration(i)*10*time.Second), nil)
		decodeLP(t, out)
		return string(out), err
	}
	c := newTestConverter(t, "traefik")
	out, err := conv(t, c, cut("1", "1"), 0)
	require.Error(t, err)
	require.Empty(t, out)
	out, err = conv(t, c, good("5", "2"), 1)
	require.NoError(t, err)
	require.Empty(t, out, "the failed first scrape was no baseline: this one is")
	out, err = conv(t, c, cut("7", "9"), 2)
	require.Error(t, err)
	require.Equal(t, "a,host=test count=2 1700000020\n", out, "the counter before the error is written")
	out, err = conv(t, c, good("8", "4"), 3)
	require.NoError(t, err)
	// h is taken against 2 (the cut 9 was not remembered): 2 more.
	require.Equal(t, "a,host=test count=1 1700000030\n"+
		"h,host=test count=2,p50=0.5,p90=0.9,p95=0.95,p99=0.99,sum=2 1700000030\n", out)
}

// fuzzPieces cuts a page into pieces of about 3 KB that start at a # HELP
// or # TYPE line, so each piece is a valid page of whole families.
func fuzzPieces(page string) []string {
	var pieces []string
	for len(page) > 0 {
		n := min(len(page), 3000)
		if i := strings.Index(page[n:], "\n# HELP "); i >= 0 {
			n += i + 1
		} else {
			n = len(page)
		}
		pieces = append(pieces, page[:n])
		page = page[n:]
	}
	return pieces
}

// TestAppendFloatMatchesStrconv holds appendFloat's whole-number shortcut to
// strconv's shortest 'g' form, around every edge of the shortcut.
func TestAppendFloatMatchesStrconv(t *testing.T) {
	values := []float64{0, math.Copysign(0, -1), 1, -1, 7, 42, 999999, -999999, 1e6, -1e6, 1e6 + 1, 999999.5,
		0.5, -0.5, 1.5, 1e-7, 123456.789, 1e15, 1e21, 9007199254740993, math.MaxInt64, math.MinInt64,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, math.Nextafter(1e6, 0), math.Nextafter(1, 2)}
	for i := -2000; i <= 2000; i++ {
		values = append(values, float64(i), float64(i)*499.75, float64(i)*1000.0)
	}
	for _, v := range values {
		require.Equal(t, strconv.FormatFloat(v, 'g', -1, 64), string(appendFloat(nil, v)), "%v", v)
	}
}
