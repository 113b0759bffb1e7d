package collector

import (
	"bytes"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

// BenchmarkParse reads whole pages with one reused parser, as the collector
// does, and reports the cost per sample.
func BenchmarkParse(b *testing.B) {
	fixture, err := os.ReadFile("testdata/traefik-v3.6.12-scrape-2.prom")
	if err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name string
		page []byte
	}{
		{"fixture", fixture},
		{"traefikpage-100", traefikpage.Generate(100, 1)},
		{"traefikpage-500", traefikpage.Generate(500, 1)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			benchParse(b, bb.page, func(p *Parser) { p.Reset(bb.page) })
		})
	}
}

// BenchmarkParseStream is BenchmarkParse through ResetReader, as the
// collector reads a page: a window at a time from a reader, never the whole
// page. Its cost per sample should match BenchmarkParse's.
func BenchmarkParseStream(b *testing.B) {
	for _, bb := range []struct {
		name string
		page []byte
	}{
		{"traefikpage-100", traefikpage.Generate(100, 1)},
		{"traefikpage-500", traefikpage.Generate(500, 1)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			r := bytes.NewReader(bb.page)
			benchParse(b, bb.page, func(p *Parser) {
				r.Reset(bb.page)
				p.ResetReader(r)
			})
		})
	}
}

// benchParse parses page, started by reset, once to count its samples and
// then b.N times, and reports the cost per sample.
func benchParse(b *testing.B, page []byte, reset func(*Parser)) {
	p := NewParser()
	n := 0
	reset(p)
	for p.Next() {
		n++
	}
	if err := p.Err(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	var sink float64
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		reset(p)
		for p.Next() {
			sink += p.Sample().Value
		}
	}
	_ = sink
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sample")
	// CPU time says more than wall time on a shared machine.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/sample")
	b.ReportMetric(float64(n), "samples/page")
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkParseExpfmt is the yardstick: expfmt.TextParser on the same pages.
func BenchmarkParseExpfmt(b *testing.B) {
	fixture, err := os.ReadFile("testdata/traefik-v3.6.12-scrape-2.prom")
	if err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name string
		page []byte
	}{
		{"fixture", fixture},
		{"traefikpage-100", traefikpage.Generate(100, 1)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			n := countSampleLines(bb.page)
			b.SetBytes(int64(len(bb.page)))
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				tp := expfmt.NewTextParser(model.LegacyValidation)
				if _, err := tp.TextToMetricFamilies(bytes.NewReader(bb.page)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/sample")
		})
	}
}

// BenchmarkParseProto is BenchmarkParseStream for the same pages in the
// delimited protobuf format, re-encoded as promhttp would answer a scraper
// that prefers it: the cost per sample of reading Traefik in protobuf.
func BenchmarkParseProto(b *testing.B) {
	for _, bb := range []struct {
		name string
		page []byte
	}{
		{"fixture", readProtoFixture(b)},
		{"traefikpage-100", textToDelimited(b, traefikpage.Generate(100, 1))},
		{"traefikpage-500", textToDelimited(b, traefikpage.Generate(500, 1))},
	} {
		b.Run(bb.name, func(b *testing.B) {
			p := NewProtoParser()
			r := bytes.NewReader(bb.page)
			reset := func() {
				r.Reset(bb.page)
				p.ResetReader(r)
			}
			n := 0
			reset()
			for p.Next() {
				n++
			}
			if err := p.Err(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(bb.page)))
			b.ReportAllocs()
			var sink float64
			runtime.GC() // the re-encoding's garbage is not the parser's
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				reset()
				for p.Next() {
					sink += p.Sample().Value
				}
			}
			_ = sink
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sample")
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/sample")
			b.ReportMetric(float64(n), "samples/page")
		})
	}
}
