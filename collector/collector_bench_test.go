package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink/diskqueue"
)

type discardAppender struct{ lines atomic.Int64 }

func (d *discardAppender) Append(_ []byte, n int) error { d.lines.Add(int64(n)); return nil }

// BenchmarkCollectorScrape is the collector's share of the pipeline: fetch
// a gzipped page over loopback HTTP, gunzip, parse, convert (traefik
// schema) and cut into records, for a Traefik with 100 services (65,362
// samples). The pages are compressed once up front, as Traefik's own
// handler would; the in-process server's CPU is counted, so the figure is
// an upper bound.
//
// With a disk queue (buffer.dir, fsync always) the scrape and the counter
// state are written to disk too; nothing is sent, so the queue drops its
// oldest segments once full, as during an outage.
func BenchmarkCollectorScrape(b *testing.B) {
	b.Run("discard", func(b *testing.B) {
		out := &discardAppender{}
		benchCollectorScrape(b, out, out.lines.Load)
	})
	b.Run("diskqueue", func(b *testing.B) {
		q, err := diskqueue.Open(b.TempDir(), diskqueue.Options{MaxBytes: 256 << 20, RecordMaxLines: 5000, RecordMaxBytes: 4 << 20}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer q.Close()
		var lines int64
		benchCollectorScrape(b, q, func() int64 {
			st := q.Stats()
			lines = st.Lines
			for _, n := range st.DroppedLines {
				lines += n
			}
			return lines
		})
	})
}

func benchCollectorScrape(b *testing.B, out Appender, appended func() int64) {
	const services = 100
	var pages [][]byte
	for r := 1; r <= 2; r++ {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		if _, err := zw.Write(traefikpage.Generate(services, r)); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		pages = append(pages, z.Bytes())
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(pages[n.Add(1)%2])
	}))
	defer srv.Close()

	cfg := config.Default()
	cfg.Traefik.URLs = []string{srv.URL + "/metrics"}
	c, err := New(&cfg, out, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := t0
	for range 2 { // baseline and first increases
		for _, s := range c.sources {
			c.scrapeSource(ctx, s, now, nil)
		}
		now = now.Add(10 * time.Second)
	}
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		for _, s := range c.sources {
			if errs := c.scrapeSource(ctx, s, now, nil); len(errs) > 0 {
				b.Fatal(errs)
			}
		}
		now = now.Add(10 * time.Second)
	}
	samples := float64(b.N) * float64(traefikpage.Samples(services))
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/samples, "cpu-ns/sample")
	b.ReportMetric(float64(appended())/float64(b.N+2), "lines/scrape")
}

// BenchmarkCollectorMemory is what the collector holds for a Traefik with
// 500 services (324,162 samples, 13 MB of line protocol a scrape) in the
// traefik schema: peak-heap-MiB is the most heap seen while scraping
// (objects, garbage not yet swept included: what the RSS follows),
// held-MiB what is left after a GC between scrapes, both above the heap
// before the first scrape (the pages served). Run it with -benchtime=3x:
// each scrape takes a quarter of a second and more with fsync.
func BenchmarkCollectorMemory(b *testing.B) {
	const services = 500
	b.Run("discard", func(b *testing.B) {
		benchCollectorMemory(b, services, &discardAppender{})
	})
	b.Run("diskqueue", func(b *testing.B) {
		cfg := config.Default()
		q, err := diskqueue.Open(b.TempDir(), diskqueue.Options{
			MaxBytes: int64(cfg.Buffer.MaxBytes), RecordMaxLines: cfg.Batch.MaxLines, RecordMaxBytes: int(cfg.Batch.MaxBytes),
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer q.Close()
		benchCollectorMemory(b, services, q)
	})
}

func benchCollectorMemory(b *testing.B, services int, out Appender) {
	pages := [][]byte{traefikpage.Generate(services, 1), traefikpage.Generate(services, 2)}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(pages[n.Add(1)%2])
	}))
	defer srv.Close()
	cfg := config.Default()
	cfg.Traefik.URLs = []string{srv.URL + "/metrics"}
	c, err := New(&cfg, out, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := t0
	scrape := func() {
		for _, s := range c.sources {
			if errs := c.scrapeSource(ctx, s, now, nil); len(errs) > 0 {
				b.Fatal(errs)
			}
		}
		now = now.Add(10 * time.Second)
	}
	// The pages (48 MB each) are the benchmark's, not the collector's.
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	scrape() // the baseline
	runtime.GC()
	peak := make(chan uint64)
	stop := make(chan struct{})
	go func() {
		s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var most uint64
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			rtmetrics.Read(s)
			most = max(most, s[0].Value.Uint64())
			select {
			case <-stop:
				peak <- most
				return
			case <-t.C:
			}
		}
	}()
	for b.Loop() {
		scrape()
	}
	close(stop)
	most := <-peak
	held := heap()
	b.ReportMetric(float64(most-base)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(held-base)/(1<<20), "held-MiB")
	runtime.KeepAlive(c)
}
