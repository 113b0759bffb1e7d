package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/collector"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// TestOpenQueueRecordLimits: the collector hands the disk queue a whole
// scrape in one append, so the queue must cut it by batch.max_lines and
// batch.max_bytes, or a large scrape would become a write larger than
// InfluxDB accepts.
func TestOpenQueueRecordLimits(t *testing.T) {
	tests := []struct {
		name      string
		maxLines  int
		maxBytes  config.Size
		lines     int
		wantLines []int
	}{
		{"by lines", 3, config.MiB, 10, []int{3, 3, 3, 1}},
		{"by bytes", 5000, 1024, 30, []int{12, 12, 6}}, // 84-byte lines
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Buffer.Dir = t.TempDir()
			cfg.Batch.MaxLines, cfg.Batch.MaxBytes = tt.maxLines, tt.maxBytes
			q, err := openQueue(&cfg, nil)
			require.NoError(t, err)
			defer func() { require.NoError(t, q.Close()) }()
			store, ok := q.(collector.StateStore)
			require.True(t, ok, "the disk queue keeps the collector's state")

			var lp strings.Builder
			for i := range tt.lines {
				lp.WriteString(strings.Repeat("m", 60) + ",i=" + string(rune('a'+i%26)) + " value=1 1700000000\n")
			}
			require.Equal(t, 84, len(lp.String())/tt.lines)
			require.NoError(t, store.AppendWithState([]byte(lp.String()), tt.lines, "k", []byte("state")))

			var got []int
			for q.Stats().Records > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				// The sink asks for batches of the same limits; a record
				// larger than them would still come out whole.
				b, err := q.Next(ctx, 1, 1)
				cancel()
				require.NoError(t, err)
				got = append(got, b.Lines)
				require.NoError(t, q.Commit(b))
			}
			require.Equal(t, tt.wantLines, got)
		})
	}
}
