package pipeline

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/collector"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
)

// input is one pair of consecutive scrapes of one target: converting them
// alternately makes every counter move (an increase, then a reset), so the
// traefik schema writes a delta for each, its most expensive case.
type input struct {
	name    string
	bodies  [][]byte
	samples int // in bodies[0]
}

// inputs are the real Traefik fixtures and generated pages; -short keeps the
// fixture and the 500-service page, the sizes the issue names.
func inputs(tb testing.TB) []input {
	tb.Helper()
	dir := filepath.Join("..", "..", "collector", "testdata")
	var fx [][]byte
	for _, name := range []string{"traefik-v3.6.12-scrape-1.prom", "traefik-v3.6.12-scrape-2.prom"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		fx = append(fx, b)
	}
	in := []input{{"fixture", fx, countSamples(tb, fx[0])}}
	sizes := []int{20, 100, 500}
	if testing.Short() {
		sizes = []int{500}
	}
	for _, n := range sizes {
		body := traefikpage.Generate(n, 1)
		in = append(in, input{fmt.Sprintf("svc%d", n), [][]byte{body, traefikpage.Generate(n, 2)}, countSamples(tb, body)})
	}
	return in
}

var schemas = []string{"traefik", "telegraf"}

func newConverter(tb testing.TB, schema string) *collector.Converter {
	tb.Helper()
	c, err := collector.NewConverter(collector.ConvertOptions{
		Schema: schema, Precision: time.Second, SeriesTTL: time.Hour,
		Tags:    map[string]string{"host": "bench-pod-7d9f8", "instance": "10.0.0.1:9100"},
		URL:     "http://10.0.0.1:9100/metrics",
		Include: []string{"traefik_*"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func countSamples(tb testing.TB, body []byte) int {
	tb.Helper()
	p := collector.NewParser()
	p.Reset(body)
	n := 0
	for p.Next() {
		n++
	}
	if err := p.Err(); err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkParse is the collector's parser alone: every sample read, nothing kept.
func BenchmarkParse(b *testing.B) {
	for _, in := range inputs(b) {
		b.Run(in.name, func(b *testing.B) {
			p := collector.NewParser()
			b.SetBytes(int64(len(in.bodies[0])))
			b.ReportAllocs()
			for b.Loop() {
				p.Reset(in.bodies[0])
				for p.Next() {
				}
				if err := p.Err(); err != nil {
					b.Fatal(err)
				}
			}
			reportPerSample(b, in.samples)
		})
	}
}

// BenchmarkParseProto is BenchmarkParse for the same pages in delimited
// protobuf: the ProtoParser alone, through a reader as the collector uses it.
func BenchmarkParseProto(b *testing.B) {
	for _, in := range protoInputs(b) {
		b.Run(in.name, func(b *testing.B) {
			p := newProtoReader()
			b.SetBytes(int64(len(in.bodies[0])))
			b.ReportAllocs()
			for b.Loop() {
				p.reset(in.bodies[0])
				for p.Next() {
				}
				if err := p.Err(); err != nil {
					b.Fatal(err)
				}
			}
			reportPerSample(b, in.samples)
		})
	}
}

// protoInputs are inputs re-encoded as delimited protobuf, families in name
// order, as a registry gathers them (and as bench/cmd/compare serves them).
// The samples are the same; their count is checked.
func protoInputs(tb testing.TB) []input {
	tb.Helper()
	ins := inputs(tb)
	for i := range ins {
		bodies := make([][]byte, len(ins[i].bodies))
		for j, text := range ins[i].bodies {
			bodies[j] = textToProtobuf(tb, text)
		}
		ins[i].bodies = bodies
		p := newProtoReader()
		p.reset(bodies[0])
		n := 0
		for p.Next() {
			n++
		}
		if p.Err() != nil || n != ins[i].samples {
			tb.Fatalf("%s in protobuf: %d samples, want %d (%v)", ins[i].name, n, ins[i].samples, p.Err())
		}
	}
	return ins
}

func textToProtobuf(tb testing.TB, text []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range sortedFamilies(tb, text) {
		if err := enc.Encode(mf); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// sortedFamilies parses a text page into its families in name order, as a
// registry gathers them.
func sortedFamilies(tb testing.TB, text []byte) []*dto.MetricFamily {
	tb.Helper()
	tp := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := tp.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		tb.Fatal(err)
	}
	sorted := make([]*dto.MetricFamily, 0, len(fams))
	for _, name := range slices.Sorted(maps.Keys(fams)) {
		sorted = append(sorted, fams[name])
	}
	return sorted
}

// sliceReader replays samples parsed beforehand, so BenchmarkConvert
// measures the converter (and its line-protocol encoding) without the parser.
type sliceReader struct {
	samples []collector.Sample
	i       int
}

func (r *sliceReader) Next() bool                { r.i++; return r.i <= len(r.samples) }
func (r *sliceReader) Sample() *collector.Sample { return &r.samples[r.i-1] }
func (r *sliceReader) Err() error                { return nil }

func preparse(tb testing.TB, body []byte) []collector.Sample {
	tb.Helper()
	p := collector.NewParser()
	p.Reset(body)
	var out []collector.Sample
	for p.Next() {
		s := *p.Sample()
		s.Family = bytes.Clone(s.Family)
		s.Name = bytes.Clone(s.Name)
		labels := make([]collector.Label, len(s.Labels))
		for i, l := range s.Labels {
			labels[i] = collector.Label{Name: bytes.Clone(l.Name), Value: bytes.Clone(l.Value)}
		}
		s.Labels = labels
		out = append(out, s)
	}
	if err := p.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// BenchmarkConvert is the converter alone: samples to line protocol (the
// encoding is part of it: it appends escaped line protocol directly).
// SetBytes is the line protocol produced.
func BenchmarkConvert(b *testing.B) {
	for _, in := range inputs(b) {
		pre := [][]collector.Sample{preparse(b, in.bodies[0]), preparse(b, in.bodies[1])}
		for _, schema := range schemas {
			b.Run(in.name+"/"+schema, func(b *testing.B) {
				c := newConverter(b, schema)
				var out []byte
				ts := time.Unix(1_800_000_000, 0)
				convert := func(i int) int {
					var err error
					out, _, err = c.Convert(&sliceReader{samples: pre[i%2]}, ts, out[:0])
					if err != nil {
						b.Fatal(err)
					}
					ts = ts.Add(10 * time.Second)
					return len(out)
				}
				convert(0)
				b.SetBytes(int64(convert(1)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					convert(i)
				}
				reportPerSample(b, len(pre[0]))
			})
		}
	}
}

// lineProtocol is what the converter writes for the second body of in.
func lineProtocol(tb testing.TB, in input, schema string) []byte {
	tb.Helper()
	c := newConverter(tb, schema)
	p := collector.NewParser()
	var out []byte
	ts := time.Unix(1_800_000_000, 0)
	for _, body := range in.bodies {
		p.Reset(body)
		var err error
		if out, _, err = c.Convert(p, ts, out[:0]); err != nil {
			tb.Fatal(err)
		}
		ts = ts.Add(10 * time.Second)
	}
	return out
}

// BenchmarkCompress is the sink's payload encoding (gzip at the sink's
// default influxdb.gzip_level, 5) next to gzip.BestSpeed, on one whole
// scrape of line protocol. The sink compresses per batch (batch.max_lines);
// one scrape at once is the same work in fewer calls.
func BenchmarkCompress(b *testing.B) {
	w, err := sink.NewWriter(sink.WriterConfig{URL: "http://127.0.0.1:8086", Database: "bench", Gzip: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range inputs(b) {
		for _, schema := range schemas {
			lp := lineProtocol(b, in, schema)
			for _, level := range []struct {
				name  string
				level int
			}{{"sink", sinkLevel}, {"bestspeed", gzip.BestSpeed}} {
				b.Run(fmt.Sprintf("%s/%s/%s", in.name, schema, level.name), func(b *testing.B) {
					var buf bytes.Buffer
					zw, _ := gzip.NewWriterLevel(&buf, level.level)
					var payload []byte
					b.SetBytes(int64(len(lp)))
					b.ReportAllocs()
					for b.Loop() {
						if payload, err = w.Encode(lp, &buf, zw); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(len(lp))/float64(len(payload)), "ratio")
				})
			}
		}
	}
}

// BenchmarkPipeline is one scrape's whole in-process work in the bridge: parse,
// convert, queue, take the batches and gzip them as the sink does. HTTP is
// left out (cmd/compare measures the real process). ns/sample here against
// the 500-service page is the figure behind "under 0.5 s of CPU per page".
func BenchmarkPipeline(b *testing.B) {
	benchPipeline(b, inputs(b), func() reader {
		p := collector.NewParser()
		return reader{p, func(body []byte) { p.Reset(body) }}
	})
}

// BenchmarkPipelineProto is BenchmarkPipeline on the same pages in
// delimited protobuf, read by the ProtoParser as the collector reads a
// Traefik that answers protobuf (traefik.format auto).
func BenchmarkPipelineProto(b *testing.B) {
	benchPipeline(b, protoInputs(b), newProtoReader)
}

// reader is a parser and the way to start it on a body.
type reader struct {
	collector.SampleReader
	reset func(body []byte)
}

func newProtoReader() reader {
	p := collector.NewProtoParser()
	var r bytes.Reader
	return reader{p, func(body []byte) {
		r.Reset(body)
		p.ResetReader(&r)
	}}
}

func benchPipeline(b *testing.B, ins []input, newReader func() reader) {
	w, err := sink.NewWriter(sink.WriterConfig{URL: "http://127.0.0.1:8086", Database: "bench", Gzip: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range ins {
		samples := in.samples
		for _, schema := range schemas {
			b.Run(in.name+"/"+schema, func(b *testing.B) {
				c := newConverter(b, schema)
				p := newReader()
				q := sink.NewMemoryQueue(256 << 20)
				var (
					out []byte
					buf bytes.Buffer
				)
				zw, _ := gzip.NewWriterLevel(&buf, sinkLevel)
				ts := time.Unix(1_800_000_000, 0)
				one := func(i int) {
					p.reset(in.bodies[i%2])
					if out, _, err = c.Convert(p, ts, out[:0]); err != nil {
						b.Fatal(err)
					}
					ts = ts.Add(10 * time.Second)
					for rest := out; len(rest) > 0; {
						chunk, n := firstLines(rest, 5000)
						if err := q.Append(chunk, n); err != nil {
							b.Fatal(err)
						}
						rest = rest[len(chunk):]
					}
					for q.Stats().Records > 0 {
						batch, err := q.Next(b.Context(), 5000, 4<<20)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := w.Encode(batch.Data, &buf, zw); err != nil {
							b.Fatal(err)
						}
						if err := q.Commit(batch); err != nil {
							b.Fatal(err)
						}
					}
				}
				one(0)
				b.SetBytes(int64(len(in.bodies[0])))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 1; b.Loop(); i++ {
					one(i)
				}
				reportPerSample(b, samples)
			})
		}
	}
}

func reportPerSample(b *testing.B, samples int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
}

// firstLines returns the first max lines of lp (or all of it) and their count,
// as a collector appends a large scrape in records of at most batch.max_lines.
func firstLines(lp []byte, max int) ([]byte, int) {
	n, end := 0, 0
	for n < max && end < len(lp) {
		i := bytes.IndexByte(lp[end:], '\n')
		if i < 0 {
			end = len(lp)
		} else {
			end += i + 1
		}
		n++
	}
	return lp[:end], n
}
