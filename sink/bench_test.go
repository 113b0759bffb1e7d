package sink

import (
	"fmt"
	"testing"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

// BenchmarkWriteThroughput writes Traefik-shaped batches of batch.max_lines
// (5000) lines to a real influxd over HTTPS with auth and reports lines/s.
// Each iteration is one batch at a new timestamp, so every point is new.
//
//	go test ./sink/ -run '^$' -bench WriteThroughput -benchtime 40x
func BenchmarkWriteThroughput(b *testing.B) {
	for _, gz := range []bool{true, false} {
		b.Run(fmt.Sprintf("gzip=%t", gz), func(b *testing.B) {
			srv := influxtest.Start(b)
			cfg := realConfig(srv)
			cfg.InfluxDB.Gzip = gz
			h := newHarness(b, cfg)
			const lines = 5000
			codes := []string{"200", "302", "404", "500"}
			methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
			var buf []byte
			var bytes int
			ts := int64(1700000000)
			for b.Loop() {
				b.StopTimer()
				buf = buf[:0]
				for i := range lines {
					buf = fmt.Appendf(buf, "traefik.service.requests.total,code=%s,host=bench,method=%s,protocol=http,service=svc%03d@docker count=%d %d\n",
						codes[i%len(codes)], methods[(i/len(codes))%len(methods)], i/(len(codes)*len(methods)), i, ts)
				}
				ts++
				bytes += len(buf)
				if err := h.q.Append(buf, lines); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := flushFor(h, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*lines)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(float64(bytes)/float64(b.N*lines), "bytes/line")
			if got := h.metric(b, "traefik_influxdb_bridge_points_written_total"); got != float64(b.N*lines) {
				b.Fatalf("wrote %v points, want %d", got, b.N*lines)
			}
		})
	}
}
