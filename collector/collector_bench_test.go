package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
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
