package collector

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func readFixtures(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.prom")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	out := map[string][]byte{}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		out[filepath.Base(path)] = b
	}
	return out
}

// countSampleLines counts the lines of a well-formed page that are samples.
func countSampleLines(body []byte) int {
	n := 0
	for _, l := range bytes.Split(body, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			n++
		}
	}
	return n
}

func TestParseFixturesMatchExpfmt(t *testing.T) {
	p := NewParser()
	for name, body := range readFixtures(t) {
		t.Run(name, func(t *testing.T) {
			want, ok := expfmtCanon(body)
			require.True(t, ok, "expfmt rejects the fixture")
			got, err := parseAll(p, body)
			require.NoError(t, err)
			require.Len(t, got, countSampleLines(body))
			require.Equal(t, want, oursCanon(got))
		})
	}
}

// TestParseFixtureSamples pins a few samples of the real scrape, read by hand
// from testdata/traefik-v3.6.12-scrape-2.prom.
func TestParseFixtureSamples(t *testing.T) {
	body, err := os.ReadFile("testdata/traefik-v3.6.12-scrape-2.prom")
	require.NoError(t, err)
	got, err := parseAll(NewParser(), body)
	require.NoError(t, err)
	find := func(name string, labels ...string) ownSample {
		t.Helper()
		for _, s := range got {
			if s.Name != name || len(s.Labels) != len(labels)/2 {
				continue
			}
			match := true
			for i, l := range s.Labels {
				match = match && l[0] == labels[2*i] && l[1] == labels[2*i+1]
			}
			if match {
				return s
			}
		}
		t.Fatalf("no sample %s %v", name, labels)
		return ownSample{}
	}
	tests := []struct {
		name   string
		sample ownSample
		family string
		typ    FamilyType
		value  float64
	}{
		{"counter", find("traefik_service_requests_total", "code", "404", "method", "GET", "protocol", "http", "service", "api-svc@file"),
			"traefik_service_requests_total", Counter, 56},
		{"bucket", find("traefik_service_request_duration_seconds_bucket", "code", "502", "method", "GET", "protocol", "http", "service", "dead-svc@file", "le", "+Inf"),
			"traefik_service_request_duration_seconds", Histogram, 15},
		{"histogram sum", find("traefik_service_request_duration_seconds_sum", "code", "502", "method", "GET", "protocol", "http", "service", "dead-svc@file"),
			"traefik_service_request_duration_seconds", Histogram, 0.00330657},
		{"summary quantile", find("go_gc_duration_seconds", "quantile", "0.5"),
			"go_gc_duration_seconds", Summary, 0.000381378},
		{"summary count", find("go_gc_duration_seconds_count"), "go_gc_duration_seconds", Summary, 7},
		{"gauge exponent", find("traefik_tls_certs_not_after", "cn", "localhost", "sans", "localhost", "serial", "603435501592737309860915919971814410927046421641"),
			"traefik_tls_certs_not_after", Gauge, 1.79818638e+09},
		{"url label", find("traefik_service_server_up", "service", "api-svc@file", "url", "http://127.0.0.1:18080"),
			"traefik_service_server_up", Gauge, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.family, tt.sample.Family)
			require.Equal(t, tt.typ, tt.sample.Type)
			require.Equal(t, tt.value, tt.sample.Value)
			require.False(t, tt.sample.HasTimestamp)
		})
	}
}

func TestParse(t *testing.T) {
	type lbl = [2]string
	tests := []struct {
		name string
		in   string
		want []ownSample
	}{
		{
			name: "untyped without labels, last line without newline",
			in:   "a 1\nb 2",
			want: []ownSample{{Family: "a", Name: "a", Value: 1}, {Family: "b", Name: "b", Value: 2}},
		},
		{
			name: "blank lines, comments, trailing blanks, timestamp",
			in:   "\n  \n# just a comment\n#\n# TYPE c counter\n\nc{x=\"1\"} 3 1700000000000  \n  c{x=\"2\"}\t4\t \n",
			want: []ownSample{
				{Family: "c", Name: "c", Type: Counter, Labels: []lbl{{"x", "1"}}, Value: 3, TimestampMs: 1700000000000, HasTimestamp: true},
				{Family: "c", Name: "c", Type: Counter, Labels: []lbl{{"x", "2"}}, Value: 4},
			},
		},
		{
			name: "escapes in label values",
			in:   `m{a="q\"uote",b="back\\slash",c="new\nline",d="plain"} 1` + "\n",
			want: []ownSample{{Family: "m", Name: "m", Labels: []lbl{{"a", "q\"uote"}, {"b", "back\\slash"}, {"c", "new\nline"}, {"d", "plain"}}, Value: 1}},
		},
		{
			name: "utf-8, empty value, blanks inside braces, trailing comma",
			in:   "m{ a = \"héllo\" , b=\"\", } -2.5e-3\n",
			want: []ownSample{{Family: "m", Name: "m", Labels: []lbl{{"a", "héllo"}, {"b", ""}}, Value: -2.5e-3}},
		},
		{
			name: "special values",
			in:   "a +Inf\na -Inf\na Inf\na 1e3\na 1E-2\na .5\na -0\na 007\n",
			want: []ownSample{
				{Family: "a", Name: "a", Value: math.Inf(1)}, {Family: "a", Name: "a", Value: math.Inf(-1)},
				{Family: "a", Name: "a", Value: math.Inf(1)}, {Family: "a", Name: "a", Value: 1000},
				{Family: "a", Name: "a", Value: 0.01}, {Family: "a", Name: "a", Value: 0.5},
				{Family: "a", Name: "a", Value: math.Copysign(0, -1)}, {Family: "a", Name: "a", Value: 7},
			},
		},
		{
			name: "histogram suffixes and _created",
			in: "# HELP h help\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\nh_created 1.7e9\n" +
				"h_total 5\n",
			want: []ownSample{
				{Family: "h", Name: "h_bucket", Type: Histogram, Labels: []lbl{{"le", "0.1"}}, Value: 1},
				{Family: "h", Name: "h_bucket", Type: Histogram, Labels: []lbl{{"le", "+Inf"}}, Value: 2},
				{Family: "h", Name: "h_sum", Type: Histogram, Value: 0.3},
				{Family: "h", Name: "h_count", Type: Histogram, Value: 2},
				{Family: "h", Name: "h_created", Type: Histogram, Value: 1.7e9},
				{Family: "h_total", Name: "h_total", Type: Untyped, Value: 5},
			},
		},
		{
			name: "counter declared without _total; gauge takes no suffix",
			in:   "# TYPE r counter\nr_total 1\nr_created 2\nr 3\n# TYPE gg gauge\ngg_total 4\n",
			want: []ownSample{
				{Family: "r", Name: "r_total", Type: Counter, Value: 1},
				{Family: "r", Name: "r_created", Type: Counter, Value: 2},
				{Family: "r", Name: "r", Type: Counter, Value: 3},
				{Family: "gg_total", Name: "gg_total", Type: Untyped, Value: 4},
			},
		},
		{
			name: "a family declared earlier keeps its samples",
			in:   "# TYPE s summary\n# TYPE k gauge\ns_count 1\nk 2\n",
			want: []ownSample{
				{Family: "s", Name: "s_count", Type: Summary, Value: 1},
				{Family: "k", Name: "k", Type: Gauge, Value: 2},
			},
		},
		{
			// The # HELP line declares h_count because h is not declared yet;
			// after # TYPE h histogram the same line would name h.
			name: "a suffixed name that is a family of its own wins",
			in:   "# HELP h_count separate\n# TYPE h histogram\nh_count 1\nh_sum 2\n",
			want: []ownSample{
				{Family: "h_count", Name: "h_count", Type: Untyped, Value: 1},
				{Family: "h", Name: "h_sum", Type: Histogram, Value: 2},
			},
		},
		{
			name: "type keyword in any case, gauge histogram, keyword glued to #",
			in:   "#TYPE a COUNTER\na 1\n# TYPE b gaugehistogram\nb_bucket{le=\"1\"} 1\n",
			want: []ownSample{
				{Family: "a", Name: "a", Type: Counter, Value: 1},
				{Family: "b", Name: "b_bucket", Type: Histogram, Labels: []lbl{{"le", "1"}}, Value: 1},
			},
		},
		{
			name: "name inside the braces, quoted names",
			in:   "{\"n:a\",x=\"1\"} 1\n{y=\"2\",n2} 2\n\"q\"{\"lb\"=\"3\"} 3\n",
			want: []ownSample{
				{Family: "n:a", Name: "n:a", Labels: []lbl{{"x", "1"}}, Value: 1},
				{Family: "n2", Name: "n2", Labels: []lbl{{"y", "2"}}, Value: 2},
				{Family: "q", Name: "q", Labels: []lbl{{"lb", "3"}}, Value: 3},
			},
		},
		{
			// Found by comparing with expfmt: it drops backslashes in a TYPE
			// word and reads escapes in a quoted name it does not validate.
			name: "backslashes in a TYPE word, escapes in a quoted HELP name",
			in:   "# TYPE a \\coun\\ter\n# HELP \"b\\nc\\\"\"\na 1\n",
			want: []ownSample{{Family: "a", Name: "a", Type: Counter, Value: 1}},
		},
		{
			name: "repeated le in a histogram",
			in:   "# TYPE h histogram\nh_bucket{le=\"1\",le=\"2\"} 1\n",
			want: []ownSample{{Family: "h", Name: "h_bucket", Type: Histogram, Labels: []lbl{{"le", "1"}, {"le", "2"}}, Value: 1}},
		},
	}
	p := NewParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAll(p, []byte(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			// Whatever expfmt accepts of these, it must read as we do.
			if want, ok := expfmtCanon([]byte(tt.in)); ok {
				require.Equal(t, want, oursCanon(got))
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
	}{
		{"unterminated quote", "a 1\nb{x=\"oops} 2\n", 2},
		{"unterminated quote at end", "b{x=\"oops", 1},
		{"newline in label value", "b{x=\"a\nb\"} 2\n", 1},
		{"bad label name", "a{1x=\"v\"} 1\n", 1},
		{"label name with colon", "a{x:y=\"v\"} 1\n", 1},
		{"reserved label name", "a{__name__=\"v\"} 1\n", 1},
		{"missing value", "\n\na{x=\"v\"}\n", 3},
		{"missing value at end", "a", 1},
		{"garbage value", "a 1x\n", 1},
		{"hex value", "a 0x1p3\n", 1},
		{"value out of range", "a 1e999\n", 1},
		{"garbage after timestamp", "a 1 2 3\n", 1},
		{"bad timestamp", "a 1 2.5\n", 1},
		{"garbage line", "# TYPE a gauge\n!!!\n", 2},
		{"name starts with a digit", "1a 1\n", 1},
		{"missing equals", "a{x} 1\n", 1},
		{"unquoted label value", "a{x=v} 1\n", 1},
		{"missing comma", "a{x=\"1\" y=\"2\"} 1\n", 1},
		{"unterminated label set", "a{x=\"1\"", 1},
		{"bad escape", "a{x=\"\\t\"} 1\n", 1},
		{"invalid utf-8", "a{x=\"\xff\"} 1\n", 1},
		{"duplicate label", "a{x=\"1\",x=\"2\"} 1\n", 1},
		{"unknown type", "# TYPE a meter\n", 1},
		{"second type line", "# TYPE a gauge\n# TYPE a counter\n", 2},
		{"type after samples", "a 1\n# TYPE a gauge\n", 2},
		{"no metric name in braces", "{x=\"1\"} 1\n", 1},
		{"two metric names in braces", "{a,b} 1\n", 1},
	}
	p := NewParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAll(p, []byte(tt.in))
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "want a ParseError, got %v", err)
			require.Equal(t, tt.line, pe.Line, "error: %v", err)
			require.False(t, p.Next(), "Next after an error")
			_, ok := expfmtCanon([]byte(tt.in))
			if tt.name != "missing value at end" && tt.name != "unterminated quote at end" && tt.name != "unterminated label set" {
				require.False(t, ok, "expfmt accepts what we reject")
			}
		})
	}
}

// TestParseZeroAllocs proves the steady state: once a parser has seen a page,
// parsing it again allocates nothing.
func TestParseZeroAllocs(t *testing.T) {
	p := NewParser()
	for name, body := range readFixtures(t) {
		t.Run(name, func(t *testing.T) {
			run := func() {
				p.Reset(body)
				for p.Next() {
				}
			}
			run()
			require.NoError(t, p.Err())
			require.Zero(t, testing.AllocsPerRun(20, run))
		})
	}
	t.Run("escapes and quoted names", func(t *testing.T) {
		body := []byte("# TYPE a counter\n" + `a{x="q\"\\\n",y="é"} 1` + "\n" + `{"b",z="1"} 2 3` + "\nc 1\n")
		run := func() {
			p.Reset(body)
			for p.Next() {
			}
		}
		run()
		require.NoError(t, p.Err())
		require.Zero(t, testing.AllocsPerRun(20, run))
	})
}

// TestParseFamilyTableStaysBounded: a daemon reads pages for months; family
// names that come and go must not grow the parser's table forever.
func TestParseFamilyTableStaysBounded(t *testing.T) {
	p := NewParser()
	for i := range 5000 {
		_, err := parseAll(p, []byte("# TYPE m"+strconv.Itoa(i)+" gauge\nm"+strconv.Itoa(i)+" 1\nsteady 2\n"))
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.fams), 4*2+1024+2)
		require.Equal(t, len(p.fams), len(p.index))
	}
}
