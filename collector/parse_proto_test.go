package collector

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"pgregory.net/rapid"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

// parseAllProto runs a ProtoParser over what r yields through a window of
// the given size (0: the default) and copies every sample.
func parseAllProto(p *ProtoParser, r io.Reader, window int) ([]ownSample, error) {
	p.window = window
	p.ResetReader(r)
	var out []ownSample
	for p.Next() {
		s := p.Sample()
		o := ownSample{Family: string(s.Family), Name: string(s.Name), Type: s.Type,
			Value: s.Value, TimestampMs: s.TimestampMs, HasTimestamp: s.HasTimestamp}
		for _, l := range s.Labels {
			o.Labels = append(o.Labels, [2]string{string(l.Name), string(l.Value)})
		}
		out = append(out, o)
	}
	return out, p.Err()
}

// decodeDelimited reads a delimited protobuf page with the protobuf library,
// as expfmt's decoder does, without expfmt's name checks (the text parser
// makes its own). expfmt sets no MaxSize, and protodelim then allocates
// whatever length a message claims before reading it (the fuzzer found a
// page of 69 bytes that asked for 2.8 TB); a message longer than the page
// cannot be whole, so the page's size bounds it here.
func decodeDelimited(pb []byte) ([]*dto.MetricFamily, error) {
	r := bufio.NewReader(bytes.NewReader(pb))
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := protodelim.UnmarshalOptions{MaxSize: int64(len(pb))}.UnmarshalFrom(r, mf)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, mf)
	}
}

// protoAsText is the page expfmt's text encoder writes for a delimited
// protobuf page; ok is false when the protobuf library rejects the page or
// the encoder refuses one of its families.
func protoAsText(pb []byte) (text []byte, ok bool) {
	mfs, err := decodeDelimited(pb)
	if err != nil {
		return nil, false
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if len(mf.GetMetric()) == 0 {
			continue // the encoder refuses it; there is nothing to read either
		}
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			return nil, false
		}
	}
	return buf.Bytes(), true
}

// encodeDelimited writes families as a delimited protobuf page.
func encodeDelimited(t require.TestingT, mfs []*dto.MetricFamily) []byte {
	var buf bytes.Buffer
	for _, mf := range mfs {
		_, err := protodelim.MarshalTo(&buf, mf)
		require.NoError(t, err)
	}
	return buf.Bytes()
}

func readProtoFixture(t testing.TB) []byte {
	t.Helper()
	pb, err := os.ReadFile("testdata/traefik-v3.6.12-scrape-2.pb")
	require.NoError(t, err)
	return pb
}

// TestParseProtoFixture: on a real Traefik page the protobuf parser yields
// sample for sample what the text parser yields for the same families
// written as text by expfmt, as Traefik writes them when asked for text.
func TestParseProtoFixture(t *testing.T) {
	pb := readProtoFixture(t)
	text, ok := protoAsText(pb)
	require.True(t, ok)
	want, err := parseAll(NewParser(), text)
	require.NoError(t, err)
	got, err := parseAllProto(NewProtoParser(), bytes.NewReader(pb), 0)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	require.Equal(t, renderSamples(want), renderSamples(got))

	// The fixture's text twin was scraped a moment apart: the same samples
	// in the same order, Traefik's values equal, only the Go runtime's and
	// the process's figures moved.
	prom, err := os.ReadFile("testdata/traefik-v3.6.12-scrape-2.prom")
	require.NoError(t, err)
	twin, err := parseAll(NewParser(), prom)
	require.NoError(t, err)
	require.Len(t, got, len(twin))
	for i := range twin {
		if !strings.HasPrefix(twin[i].Family, "go_") && !strings.HasPrefix(twin[i].Family, "process_") {
			require.Equal(t, renderSamples(twin[i:i+1]), renderSamples(got[i:i+1]))
		}
		twin[i].Value, got[i].Value = 0, 0
	}
	require.Equal(t, renderSamples(twin), renderSamples(got))
}

// constCollector yields fixed metrics, so that a registry can gather
// families of every shape client_golang can build.
type constCollector []prometheus.Metric

func (c constCollector) Describe(chan<- *prometheus.Desc) {} // unchecked

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

// genRegistryPage draws a registry of counters, gauges, untyped metrics,
// histograms (custom bounds, +Inf given explicitly, no bounds, native only)
// and summaries with odd label values, and returns what it gathers.
func genRegistryPage(t *rapid.T) []*dto.MetricFamily {
	reg := prometheus.NewRegistry()
	values := []float64{0, 1, -1, 0.25, 1e-9, 3e15, 12345.678, math.Inf(1), math.Inf(-1), math.NaN(), math.Copysign(0, -1)}
	bounds := []float64{-1, 0, 0.005, 0.1, 0.25, 1, 2.5, 10, 1e6, math.Inf(1), math.Copysign(0, -1)}
	labelValues := []string{"", "v", `a"b`, `a\b`, "a\nb", "é", "日本", "x y", "{}", `\n`, "+Inf"}
	var cc constCollector
	nfam := rapid.IntRange(1, 6).Draw(t, "families")
	for f := range nfam {
		name := "m" + string(rune('a'+f))
		nlab := rapid.IntRange(0, 2).Draw(t, "nlabels")
		lnames := []string{"code", "service"}[:nlab]
		typ := rapid.IntRange(0, 6).Draw(t, "type")
		desc := prometheus.NewDesc(name, "help "+name+" \\ \n", lnames, prometheus.Labels{"const": "c"})
		seen := map[string]bool{}
		for range rapid.IntRange(1, 3).Draw(t, "series") {
			var lv []string
			for range lnames {
				lv = append(lv, rapid.SampledFrom(labelValues).Draw(t, "lv"))
			}
			if seen[strings.Join(lv, "\xff")] {
				continue
			}
			seen[strings.Join(lv, "\xff")] = true
			var m prometheus.Metric
			switch typ {
			case 0, 1, 2:
				vt := []prometheus.ValueType{prometheus.CounterValue, prometheus.GaugeValue, prometheus.UntypedValue}[typ]
				v := rapid.SampledFrom(values).Draw(t, "v")
				if vt == prometheus.CounterValue && (v < 0 || math.IsNaN(v)) {
					v = 1 // a counter cannot go down
				}
				m = prometheus.MustNewConstMetric(desc, vt, v, lv...)
			case 3, 4:
				bs := map[float64]uint64{}
				for range rapid.IntRange(0, 5).Draw(t, "nbuckets") {
					bs[rapid.SampledFrom(bounds).Draw(t, "le")] = uint64(rapid.IntRange(0, 1000).Draw(t, "n"))
				}
				m = prometheus.MustNewConstHistogram(desc, uint64(rapid.IntRange(0, 1000).Draw(t, "count")), rapid.SampledFrom(values).Draw(t, "sum"), bs, lv...)
			case 5:
				qs := map[float64]float64{}
				for range rapid.IntRange(0, 3).Draw(t, "nq") {
					qs[rapid.SampledFrom([]float64{0, 0.5, 0.9, 0.99, 1}).Draw(t, "q")] = rapid.SampledFrom(values).Draw(t, "qv")
				}
				m = prometheus.MustNewConstSummary(desc, uint64(rapid.IntRange(0, 1000).Draw(t, "count")), rapid.SampledFrom(values).Draw(t, "sum"), qs, lv...)
			case 6:
				h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: "native only",
					NativeHistogramBucketFactor: 1.1, ConstLabels: prometheus.Labels{"const": strings.Join(lv, ",")}})
				for range rapid.IntRange(0, 4).Draw(t, "observations") {
					h.Observe(rapid.SampledFrom([]float64{0, 0.3, 2, 100}).Draw(t, "obs"))
				}
				m = h
			}
			if rapid.IntRange(0, 4).Draw(t, "ts") == 0 {
				m = prometheus.NewMetricWithTimestamp(time.UnixMilli(1700000000123), m)
			}
			cc = append(cc, m)
			if typ == 6 {
				break // one series: its labels are its const labels
			}
		}
	}
	reg.MustRegister(cc)
	mfs, err := reg.Gather()
	if err != nil {
		t.Skip("the registry refuses this page:", err)
	}
	return mfs
}

// TestParseProtoMatchesTextOnGeneratedPages: for pages built by
// client_golang, as Traefik builds its own, the protobuf parser yields the
// samples the text parser yields for the text expfmt writes of them.
func TestParseProtoMatchesTextOnGeneratedPages(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mfs := genRegistryPage(t)
		var text bytes.Buffer
		for _, mf := range mfs {
			_, err := expfmt.MetricFamilyToText(&text, mf)
			require.NoError(t, err)
		}
		pb := encodeDelimited(t, mfs)
		want, err := parseAll(NewParser(), text.Bytes())
		require.NoError(t, err, "text:\n%s", text.Bytes())
		got, err := parseAllProto(NewProtoParser(), bytes.NewReader(pb), 0)
		require.NoError(t, err)
		require.Equal(t, renderSamples(want), renderSamples(got), "text:\n%s", text.Bytes())
		// Through a small window in random splits: the same.
		window := rapid.IntRange(1, 64).Draw(t, "window")
		streamed, err := parseAllProto(NewProtoParser(), &chunkyReader{b: pb, rnd: rand.New(rand.NewPCG(uint64(window), 1)), max: 7}, window)
		require.NoError(t, err)
		require.Equal(t, renderSamples(want), renderSamples(streamed))
	})
}

// protoPages are pages for the streaming and allocation tests: the fixture
// and a generated Traefik page re-encoded as protobuf.
func protoPages(t testing.TB) map[string][]byte {
	t.Helper()
	return map[string][]byte{
		"fixture":       readProtoFixture(t),
		"traefikpage-5": textToDelimited(t, traefikpage.Generate(5, 1)),
	}
}

// textToDelimited re-encodes a text page as delimited protobuf with the
// families in name order, as a registry gathers them (and as the bench
// module's compare does).
func textToDelimited(t testing.TB, text []byte) []byte {
	t.Helper()
	tp := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := tp.TextToMetricFamilies(bytes.NewReader(text))
	require.NoError(t, err)
	names := slices.Sorted(maps.Keys(fams))
	mfs := make([]*dto.MetricFamily, 0, len(names))
	for _, n := range names {
		mfs = append(mfs, fams[n])
	}
	return encodeDelimited(t, mfs)
}

// TestParseProtoStream: read through windows far smaller than a family, in
// reads of random sizes, so that families span many refills and Metric
// messages straddle them, the samples are those of the whole page, and the
// window grew only to hold one Metric.
func TestParseProtoStream(t *testing.T) {
	for name, pb := range protoPages(t) {
		t.Run(name, func(t *testing.T) {
			want, err := parseAllProto(NewProtoParser(), bytes.NewReader(pb), 0)
			require.NoError(t, err)
			for _, window := range []int{1, 2, 7, 64, 333} {
				for seed := range uint64(3) {
					p := NewProtoParser()
					r := &chunkyReader{b: pb, rnd: rand.New(rand.NewPCG(seed, 2)), max: 1 + int(seed)*50, eofWithData: seed == 1}
					got, err := parseAllProto(p, r, window)
					require.NoError(t, err)
					require.Equal(t, renderSamples(want), renderSamples(got), "window %d seed %d", window, seed)
					require.Less(t, len(p.win), 4096, "the window holds a Metric, not a family")
				}
			}
			got, err := parseAllProto(NewProtoParser(), iotest.OneByteReader(bytes.NewReader(pb)), 16)
			require.NoError(t, err)
			require.Equal(t, renderSamples(want), renderSamples(got))
		})
	}
}

// TestParseProtoZeroAllocs: a parser that has read a page reads it again
// without allocating, streamed as the collector reads it.
func TestParseProtoZeroAllocs(t *testing.T) {
	for name, pb := range protoPages(t) {
		t.Run(name, func(t *testing.T) {
			p := NewProtoParser()
			r := bytes.NewReader(pb)
			run := func() {
				r.Reset(pb)
				p.ResetReader(r)
				for p.Next() {
				}
			}
			run()
			require.NoError(t, p.Err())
			require.Zero(t, testing.AllocsPerRun(20, run))
		})
	}
}

// Builders of raw protobuf for the tests that need what no encoder writes.
func pbBytes(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func pbVarint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func pbDouble(num protowire.Number, v float64) []byte {
	return protowire.AppendFixed64(protowire.AppendTag(nil, num, protowire.Fixed64Type), math.Float64bits(v))
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func delimit(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = protowire.AppendBytes(out, m)
	}
	return out
}

// gaugeMetric is a Metric with one label and a gauge value.
func gaugeMetric(lv string, v float64) []byte {
	return cat(pbBytes(1, cat(pbBytes(1, []byte("a")), pbBytes(2, []byte(lv)))), pbBytes(2, pbDouble(1, v)))
}

// TestParseProtoFieldOrder: fields in an order no encoder writes, repeated
// fields and merged messages read as the protobuf library reads them.
func TestParseProtoFieldOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		fam  []byte
	}{
		{"metrics before the name and type", cat(pbBytes(4, gaugeMetric("x", 1)), pbBytes(4, gaugeMetric("y", 2)),
			pbBytes(1, []byte("g")), pbVarint(3, 1), pbBytes(4, gaugeMetric("z", 3)))},
		{"the last name and type win", cat(pbBytes(1, []byte("old")), pbVarint(3, 0), pbBytes(2, []byte("help")),
			pbBytes(1, []byte("g")), pbVarint(3, 1), pbBytes(4, gaugeMetric("x", 1)), pbBytes(1, []byte("g")), pbVarint(3, 1))},
		{"held: the last name and type win", cat(pbBytes(1, []byte("old")), pbBytes(4, gaugeMetric("x", 1)),
			pbBytes(1, []byte("g")), pbVarint(3, 0), pbVarint(3, 1), pbBytes(4, gaugeMetric("y", 2)))},
		{"no type is a counter", cat(pbBytes(1, []byte("c")), pbBytes(4, cat(pbBytes(3, pbDouble(1, 4)), pbBytes(3, pbDouble(1, 5)))))},
		{"split histogram merges", cat(pbBytes(1, []byte("h")), pbVarint(3, 4), pbBytes(4, cat(
			pbBytes(7, cat(pbVarint(1, 9), pbBytes(3, cat(pbDouble(2, 1), pbVarint(1, 3))))),
			pbVarint(6, 1700),
			pbBytes(7, cat(pbDouble(2, 2.5), pbBytes(3, cat(pbDouble(2, math.Inf(1)), pbVarint(1, 9)))))))),
		},
		{"gauge histogram reads as a histogram", cat(pbBytes(1, []byte("gh")), pbVarint(3, 5), pbBytes(4, cat(
			pbBytes(7, cat(pbVarint(1, 4), pbDouble(2, 1.5), pbBytes(3, cat(pbDouble(2, 0.5), pbVarint(1, 2)))))))),
		},
		{"unknown fields skipped", cat(pbBytes(1, []byte("g")), pbVarint(3, 1), pbVarint(99, 7), pbDouble(98, 1), pbBytes(5, []byte("seconds")),
			pbBytes(4, cat(gaugeMetric("x", 1), pbBytes(97, []byte("zz")))))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pb := delimit(tc.fam, cat(pbBytes(1, []byte("after")), pbVarint(3, 1), pbBytes(4, gaugeMetric("w", 7))))
			text, ok := protoAsText(pb)
			require.True(t, ok)
			want, err := parseAll(NewParser(), text)
			require.NoError(t, err)
			for _, window := range []int{0, 3} {
				got, err := parseAllProto(NewProtoParser(), iotest.HalfReader(bytes.NewReader(pb)), window)
				require.NoError(t, err)
				require.Equal(t, renderSamples(want), renderSamples(got), "text:\n%s", text)
			}
		})
	}
}

// TestParseProtoNativeHistogram: a histogram with native buckets only reads
// as expfmt writes it in text: the +Inf bucket (its count), _sum, _count.
func TestParseProtoNativeHistogram(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "n", Help: "h", NativeHistogramBucketFactor: 1.1})
	for _, v := range []float64{0.1, 1, 10} {
		h.Observe(v)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.NotEmpty(t, mfs[0].Metric[0].Histogram.PositiveSpan, "native buckets on the page")
	got, err := parseAllProto(NewProtoParser(), bytes.NewReader(encodeDelimited(t, mfs)), 0)
	require.NoError(t, err)
	require.Equal(t, "n 3 n_bucket [[\"le\" \"+Inf\"]] 3 0 false\nn 3 n_sum [] 11.1 0 false\nn 3 n_count [] 3 0 false\n", renderSamples(got))
}

// TestParseProtoErrors: a malformed page ends with a *ParseError giving the
// byte offset, after the samples of the Metrics read whole before it.
func TestParseProtoErrors(t *testing.T) {
	good := cat(pbBytes(1, []byte("g")), pbVarint(3, 1), pbBytes(4, gaugeMetric("x", 1)))
	withMetric := func(m []byte) []byte {
		return delimit(good, cat(pbBytes(1, []byte("b")), pbVarint(3, 1), pbBytes(4, m)))
	}
	label := func(n, v string) []byte { return pbBytes(1, cat(pbBytes(1, []byte(n)), pbBytes(2, []byte(v)))) }
	full := delimit(good, good)
	for _, tc := range []struct {
		name    string
		page    []byte
		samples int
		msg     string
	}{
		{"truncated length", append(delimit(good), 0x80), 1, "invalid length"},
		{"truncated family", full[:len(full)-3], 1, "page ends inside"},
		{"length past the family", delimit(good, cat(pbBytes(1, []byte("b")), []byte{0x22, 0x7f, 0x01})), 1, "longer than its metric family"},
		{"wrong wire type of type", delimit(good, cat(pbBytes(1, []byte("b")), pbDouble(3, 1))), 1, "wire type"},
		{"wrong wire type of a value", withMetric(pbBytes(2, pbVarint(1, 1))), 1, "wire type"},
		{"wrong wire type of a label", withMetric(pbVarint(1, 1)), 1, "wire type"},
		{"truncated metric field", withMetric([]byte{0x0a, 0x05, 0x0a}), 1, "longer than its metric"},
		{"bad UTF-8 in a label value", withMetric(label("a", "\xff")), 1, "UTF-8"},
		{"invalid label name", withMetric(label("a-b", "v")), 1, "invalid label name"},
		{"empty label name", withMetric(label("", "v")), 1, "invalid label name"},
		{"__name__", withMetric(label("__name__", "v")), 1, "reserved"},
		// Every Metric's names are checked, not only a family's first.
		{"invalid label name after checked ones", withMetric(cat(label("a", "1"), label("b-c", "v"))), 1, "invalid label name"},
		{"invalid label name where a valid one was", delimit(good, cat(pbBytes(1, []byte("b")), pbVarint(3, 1),
			pbBytes(4, cat(label("a", "1"), label("b", "2"), pbBytes(2, pbDouble(1, 1)))),
			pbBytes(4, cat(label("a", "1"), label("__name__", "2"), pbBytes(2, pbDouble(1, 1)))))), 2, "reserved"},
		{"label twice", withMetric(cat(label("a", "1"), label("a", "2"))), 1, "given twice"},
		{"invalid metric name", delimit(good, cat(pbBytes(1, []byte("b.c")), pbVarint(3, 1), pbBytes(4, gaugeMetric("x", 1)))), 1, "invalid metric name"},
		{"no name", delimit(good, cat(pbVarint(3, 1), pbBytes(4, gaugeMetric("x", 1)))), 1, "without a name"},
		{"unknown type", delimit(good, cat(pbBytes(1, []byte("b")), pbVarint(3, 9), pbBytes(4, gaugeMetric("x", 1)))), 1, "unknown metric type"},
		{"renamed after its metrics", delimit(good, cat(pbBytes(1, []byte("b")), pbVarint(3, 1), pbBytes(4, gaugeMetric("x", 1)), pbBytes(1, []byte("c")))), 2, "renamed"},
		{"a group", delimit(good, cat(pbBytes(1, []byte("b")), protowire.AppendTag(nil, 9, protowire.StartGroupType))), 1, "not supported"},
		{"huge family length", append(delimit(good), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 1, "too large"},
		{"huge metric length", delimit(good, cat(pbBytes(1, []byte("b")), pbVarint(3, 1), []byte{0x22, 0xff, 0xff, 0xff, 0xff, 0x0f})), 1, "longer than its metric family"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, window := range []int{0, 4} {
				p := NewProtoParser()
				got, err := parseAllProto(p, bytes.NewReader(tc.page), window)
				var pe *ParseError
				require.True(t, errors.As(err, &pe), "want a ParseError, got %v", err)
				require.Zero(t, pe.Line)
				require.Positive(t, pe.Offset)
				require.LessOrEqual(t, pe.Offset, int64(len(tc.page)))
				require.Contains(t, pe.Error(), tc.msg)
				require.Len(t, got, tc.samples)
				require.False(t, p.Next())
				require.Less(t, len(p.win), 1<<20, "no allocation for a length the page does not have")
			}
		})
	}
}

// TestParseProtoReadError: an error of the reader ends the page after the
// Metrics read whole, and is what Err returns.
func TestParseProtoReadError(t *testing.T) {
	boom := errors.New("connection reset")
	pb := readProtoFixture(t)
	all, err := parseAllProto(NewProtoParser(), bytes.NewReader(pb), 0)
	require.NoError(t, err)
	p := NewProtoParser()
	got, err := parseAllProto(p, io.MultiReader(bytes.NewReader(pb[:len(pb)/2]), iotest.ErrReader(boom)), 64)
	require.ErrorIs(t, err, boom)
	var pe *ParseError
	require.False(t, errors.As(err, &pe), "not a parse error")
	require.NotEmpty(t, got)
	require.Less(t, len(got), len(all))
	require.Equal(t, renderSamples(all[:len(got)]), renderSamples(got))

	// Cut anywhere, the Metrics before the cut are yielded whole, however
	// small what is left after the last of them, and then the reader's error.
	for cut := 0; ; cut = min(cut+1+cut%89, len(pb)) {
		got, err := parseAllProto(NewProtoParser(), io.MultiReader(bytes.NewReader(pb[:cut]), iotest.ErrReader(boom)), 64)
		require.ErrorIs(t, err, boom, "cut at %d", cut)
		require.Equal(t, renderSamples(all[:len(got)]), renderSamples(got))
		if cut == len(pb) {
			require.Len(t, got, len(all), "a whole page then an error: every sample")
			break
		}
	}

	// A last family shorter than the longest varint, whole before the
	// error: read, though the parser looks ahead for up to 10 bytes.
	tiny := delimit(cat(pbBytes(1, []byte("a")), pbBytes(4, pbBytes(3, nil))))
	require.Less(t, len(tiny), 10)
	got, err = parseAllProto(NewProtoParser(), io.MultiReader(bytes.NewReader(pb), bytes.NewReader(tiny), iotest.ErrReader(boom)), 64)
	require.ErrorIs(t, err, boom)
	require.Len(t, got, len(all)+1)
	require.Equal(t, "a 1 a [] 0 0 false\n", renderSamples(got[len(all):]))
}

// FuzzParseProto checks that the protobuf parser never panics nor allocates
// beyond what the page holds, reads an input the same way through a small
// window, and, for every page that the protobuf library and expfmt's text
// encoder accept and the text parser reads, yields what the text parser
// yields for that text.
func FuzzParseProto(f *testing.F) {
	pb := readProtoFixture(f)
	// The whole fixture is 21 KB; its families one at a time keep the
	// fuzzer quick, and a few cuts seed truncations.
	for len(pb) > 0 {
		l, k := protowire.ConsumeVarint(pb)
		n := k + int(l)
		f.Add(pb[:n])
		f.Add(pb[:n/2])
		pb = pb[n:]
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p := NewProtoParser()
		got, err := parseAllProto(p, bytes.NewReader(in), 0)
		require.LessOrEqual(t, len(p.win), max(streamWindow, 2*len(in)), "the window grows only with the page")
		streamed, errStream := parseAllProto(NewProtoParser(), iotest.OneByteReader(bytes.NewReader(in)), 1+len(in)%17)
		require.Equal(t, err, errStream, "streamed through a window, it errs differently")
		require.Equal(t, renderSamples(got), renderSamples(streamed), "streamed through a window, it reads differently")
		text, ok := protoAsText(in)
		if !ok || err != nil || !distinctFamilies(in) {
			return
		}
		want, terr := parseAll(NewParser(), text)
		if terr != nil {
			return
		}
		require.Equal(t, renderSamples(want), renderSamples(got), "text:\n%s", text)
	})
}

// distinctFamilies reports whether no family name of a page is another's,
// alone or with a suffix: the text parser would read such a page's samples
// as one family's (or refuse a second TYPE line), which protobuf keeps apart.
func distinctFamilies(pb []byte) bool {
	mfs, err := decodeDelimited(pb)
	if err != nil {
		return false
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		if len(mf.GetMetric()) > 0 {
			names[mf.GetName()] = !names[mf.GetName()] && true
			if !names[mf.GetName()] {
				return false
			}
		}
	}
	for n := range names {
		for _, s := range suffixNames {
			if names[n+s] {
				return false
			}
		}
	}
	return true
}

// TestParseProtoMissingValue: a Metric without the message of its family's
// type (which expfmt's text encoder refuses to write) reads as protobuf's
// defaults: 0, and for a histogram no buckets but the +Inf one.
func TestParseProtoMissingValue(t *testing.T) {
	label := pbBytes(1, cat(pbBytes(1, []byte("a")), pbBytes(2, []byte("x"))))
	pb := delimit(
		cat(pbBytes(1, []byte("g")), pbVarint(3, 1), pbBytes(4, cat(label, pbBytes(3, pbDouble(1, 5))))),
		cat(pbBytes(1, []byte("h")), pbVarint(3, 4), pbBytes(4, label)),
	)
	got, err := parseAllProto(NewProtoParser(), bytes.NewReader(pb), 0)
	require.NoError(t, err)
	require.Equal(t, `g 2 g [["a" "x"]] 0 0 false
h 3 h_bucket [["a" "x"] ["le" "+Inf"]] 0 0 false
h 3 h_sum [["a" "x"]] 0 0 false
h 3 h_count [["a" "x"]] 0 0 false
`, renderSamples(got))
}
