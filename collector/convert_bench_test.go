package collector

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

// BenchmarkConvert measures parsing and converting the real Traefik pages,
// alternating scrape 1 and 2 so that the traefik schema writes every
// counter (each alternation is an increase or a reset), with every family
// included (go_* and process_* too). ns/sample covers the parser, since
// Convert drives it.
func BenchmarkConvert(b *testing.B) {
	pages := readScrapes(b)
	bodies := [][]byte{[]byte(pages[0]), []byte(pages[1])}
	for _, schema := range []string{"traefik", "prometheus", "telegraf"} {
		b.Run("fixture/"+schema, func(b *testing.B) {
			benchConvert(b, schema, bodies)
		})
	}
	// A Traefik with 500 services: 324,162 samples, 46 MB, two rounds of
	// traffic apart so that counters and histograms grow.
	var big [][]byte
	for _, schema := range []string{"traefik", "prometheus", "telegraf"} {
		b.Run("traefikpage-500/"+schema, func(b *testing.B) {
			if big == nil {
				big = [][]byte{traefikpage.Generate(500, 1), traefikpage.Generate(500, 2)}
			}
			benchConvert(b, schema, big)
		})
	}
}

// BenchmarkConvertProto is BenchmarkConvert on the protobuf pages a
// Traefik sends a scraper that asks for them (as the bridge does), from
// the ProtoParser: pages of 100 and 500 services.
func BenchmarkConvertProto(b *testing.B) {
	for _, services := range []int{100, 500} {
		var pages [][]byte
		for _, schema := range []string{"traefik", "telegraf"} {
			b.Run(fmt.Sprintf("traefikpage-%d/%s", services, schema), func(b *testing.B) {
				if pages == nil {
					pages = [][]byte{textToDelimited(b, traefikpage.Generate(services, 1)), textToDelimited(b, traefikpage.Generate(services, 2))}
				}
				p := NewProtoParser()
				benchConvertFrom(b, schema, pages, func(body []byte) SampleReader {
					p.ResetReader(bytes.NewReader(body))
					return p
				})
			})
		}
	}
}

func benchConvert(b *testing.B, schema string, bodies [][]byte) {
	p := NewParser()
	benchConvertFrom(b, schema, bodies, func(body []byte) SampleReader {
		p.Reset(body)
		return p
	})
}

func benchConvertFrom(b *testing.B, schema string, bodies [][]byte, reader func(body []byte) SampleReader) {
	c, err := NewConverter(ConvertOptions{
		Schema: schema, Precision: time.Second, SeriesTTL: time.Hour,
		Tags: map[string]string{"host": "bench-pod-7d9f8", "instance": "10.0.0.1:9100"},
		URL:  "http://10.0.0.1:9100/metrics",
	})
	if err != nil {
		b.Fatal(err)
	}
	var out []byte
	samples := 0
	ts := t0
	// Warm up: the first scrape creates the series.
	for _, body := range bodies {
		if out, _, err = c.Convert(reader(body), ts, out[:0]); err != nil {
			b.Fatal(err)
		}
		ts = ts.Add(10 * time.Second)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for i := 0; b.Loop(); i++ {
		var st ConvertStats
		out, st, err = c.Convert(reader(bodies[i%len(bodies)]), ts, out[:0])
		if err != nil {
			b.Fatal(err)
		}
		samples += st.Samples
		ts = ts.Add(10 * time.Second)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(samples), "ns/sample")
	// CPU time is the figure to hold against Telegraf's (CPU per sample):
	// on a shared machine wall time also counts the waits for a core.
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(samples), "cpu-ns/sample")
}

// processCPU is the user and system CPU time of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConverterState measures what saving the traefik schema's state
// after every scrape costs (the collector does it with buffer.dir): the
// marshalling into a reused buffer, per scrape, for pages of 100 and 500
// services. state-bytes is what goes to disk next to the scrape's lines
// (lp-bytes); cpu-ns/sample is against the page's samples, to hold next to
// BenchmarkConvert's.
func BenchmarkConverterState(b *testing.B) {
	for _, services := range []int{100, 500} {
		b.Run("traefikpage-"+strconv.Itoa(services), func(b *testing.B) {
			c, out := primedConverter(b, services)
			var st []byte
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				st = c.appendState(st[:0])
			}
			b.ReportMetric(float64(len(st)), "state-bytes")
			b.ReportMetric(float64(len(out)), "lp-bytes")
			b.ReportMetric(float64(c.stateSeries()), "series")
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N)/float64(traefikpage.Samples(services)), "cpu-ns/sample")
		})
	}
}

// BenchmarkConverterStateSize is what a grouped scrape spends on its state
// besides writing it: counting its length for the disk queue's header
// (stateSize), per scrape, at 100 and 500 services.
func BenchmarkConverterStateSize(b *testing.B) {
	for _, services := range []int{100, 500} {
		b.Run("traefikpage-"+strconv.Itoa(services), func(b *testing.B) {
			c, _ := primedConverter(b, services)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				n = c.stateSize()
			}
			b.ReportMetric(float64(n), "state-bytes")
		})
	}
}

// primedConverter is a traefik-schema converter after two scrapes of a
// generated page of services, and the line protocol of the second.
func primedConverter(b *testing.B, services int) (*Converter, []byte) {
	c, err := NewConverter(ConvertOptions{
		Schema: "traefik", Precision: time.Second, SeriesTTL: time.Hour,
		Tags: map[string]string{"host": "bench-pod-7d9f8", "instance": "10.0.0.1:9100"},
	})
	if err != nil {
		b.Fatal(err)
	}
	p := NewParser()
	var out []byte
	ts := t0
	for r := 1; r <= 2; r++ {
		p.Reset(traefikpage.Generate(services, r))
		if out, _, err = c.Convert(p, ts, out[:0]); err != nil {
			b.Fatal(err)
		}
		ts = ts.Add(10 * time.Second)
	}
	return c, out
}

// BenchmarkConverterMemory measures what the converter keeps between
// scrapes: the heap it holds after two scrapes of a generated page (the
// parser, the pages and the line protocol excluded), per series of its
// state. Run it with -benchtime 1x; each iteration builds a new converter.
func BenchmarkConverterMemory(b *testing.B) {
	for _, services := range []int{100, 500} {
		b.Run("traefikpage-"+strconv.Itoa(services), func(b *testing.B) {
			pages := [][]byte{traefikpage.Generate(services, 1), traefikpage.Generate(services, 2)}
			p := NewParser()
			out := make([]byte, 0, 64<<20)
			for _, page := range pages { // the parser's own tables
				p.Reset(page)
				for p.Next() {
				}
			}
			var held uint64
			var series int
			for b.Loop() {
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				c, err := NewConverter(ConvertOptions{
					Schema: "traefik", Precision: time.Second, SeriesTTL: time.Hour,
					Tags: map[string]string{"host": "bench-pod-7d9f8", "instance": "10.0.0.1:9100"},
				})
				if err != nil {
					b.Fatal(err)
				}
				ts := t0
				for _, page := range pages {
					p.Reset(page)
					if out, _, err = c.Convert(p, ts, out[:0]); err != nil {
						b.Fatal(err)
					}
					ts = ts.Add(10 * time.Second)
				}
				runtime.GC()
				runtime.ReadMemStats(&m1)
				held, series = m1.HeapAlloc-m0.HeapAlloc, c.stateSeries()
				runtime.KeepAlive(c)
			}
			b.ReportMetric(float64(series), "series")
			b.ReportMetric(float64(held)/float64(series), "bytes/series")
			b.ReportMetric(float64(held)/(1<<20), "held-MiB")
		})
	}
}
