package collector

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink/diskqueue"
)

// refuseGroups refuses the first refuse TryBeginGroup calls, as the disk
// queue does while another append is being written and synced.
type refuseGroups struct {
	countGroups
	refuse, tries int
}

func (r *refuseGroups) TryBeginGroup(key string) (bool, error) {
	r.tries++
	if r.tries <= r.refuse {
		return false, nil
	}
	return r.countGroups.TryBeginGroup(key)
}

// TestCollectorHoldsLittle: while a scrape is converted, the lines not yet
// handed over stay under one record plus a step, and a grouped scrape's
// state is never held whole. Into a memory queue the
// converter hands each record over once it is full rather than every
// defaultFlushEvery bytes; into a disk queue that refused the scrape's group
// at first (an append was being synced), it asks again every
// groupRetryEvery bytes, not every flushEvery. The capacity of the target's
// line buffer after the scrape is how much it held at most.
func TestCollectorHoldsLittle(t *testing.T) {
	// The first scrape is the baseline of the deltas; the second writes
	// 2.6 MB of line protocol.
	page1, page2 := string(traefikpage.Generate(100, 1)), string(traefikpage.Generate(100, 2))
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

	t.Run("memory", func(t *testing.T) {
		srv := pageServer(t, page1, page2)
		cfg := testConfig(srv.URL + "/metrics")
		cfg.Batch.MaxLines = 500 // about 75 KB a record
		out := &discardAppender{}
		c, _ := newTestCollector(t, cfg, out)
		tick(c, t0)
		tick(c, t0.Add(10*time.Second))
		tg := c.sources[0].targets[srv.URL+"/metrics"]
		require.Greater(t, out.lines.Load(), int64(15000))
		// Every defaultFlushEvery (1 MiB), it was 1.3 MB.
		require.Less(t, cap(tg.out), 200<<10)
	})

	// sink.MemoryQueue keeps the records the converter hands over instead
	// of copying them: the converter keeps no buffer between scrapes, and
	// the queue holds what a copying Appender is given.
	t.Run("memory queue", func(t *testing.T) {
		page3 := string(traefikpage.Generate(100, 3))
		cfg := testConfig()
		cfg.Batch = config.Default().Batch
		copied := &appendRecorder{}
		q := sink.NewMemoryQueue(256 << 20)
		var tgs []*target
		for _, out := range []Appender{copied, q} {
			srv := pageServer(t, page1, page2, page3)
			cfg := *cfg
			cfg.Traefik.URLs = []string{srv.URL + "/metrics"}
			c, _ := newTestCollector(t, &cfg, out)
			for i := range 3 {
				tick(c, t0.Add(time.Duration(i)*10*time.Second))
			}
			tgs = append(tgs, c.sources[0].targets[srv.URL+"/metrics"])
		}
		want, wantRecs, _ := copied.take()
		require.Greater(t, len(wantRecs), 6, "records cut while converting")
		require.NotZero(t, cap(tgs[0].out), "a copying Appender leaves the buffer to the converter")
		require.Zero(t, cap(tgs[1].out), "the queue has the converter's buffer")
		var got strings.Builder
		for q.Stats().Records > 0 {
			b, err := q.Next(context.Background(), 1, 1) // a record at a time
			require.NoError(t, err)
			got.Write(b.Data)
			require.NoError(t, q.Commit(b))
		}
		require.Equal(t, want, got.String())
	})

	t.Run("disk queue refusing twice", func(t *testing.T) {
		srv := pageServer(t, page1, page2)
		cfg := testConfig(srv.URL + "/metrics")
		cfg.Batch.MaxLines = 500
		q, err := diskqueue.Open(t.TempDir(), diskqueue.Options{MaxBytes: 64 << 20, RecordMaxLines: cfg.Batch.MaxLines, RecordMaxBytes: int(cfg.Batch.MaxBytes)}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = q.Close() })
		rg := &refuseGroups{countGroups: countGroups{Queue: q}, refuse: 2}
		c, _ := newTestCollector(t, cfg, rg)
		c.flushEvery = 256 << 10
		tick(c, t0)
		require.Zero(t, rg.tries, "the baseline is small")
		require.NotEmpty(t, drainQueue(t, q))
		tick(c, t0.Add(10*time.Second))
		tg := c.sources[0].targets[srv.URL+"/metrics"]
		require.Equal(t, 3, rg.tries)
		require.Equal(t, 1, rg.begun)
		require.Greater(t, rg.records, 30)
		// Opened at 256 KiB + 2 x 64 KiB of lines; asking again every
		// flushEvery, it would have held 768 KiB.
		require.Less(t, cap(tg.out), 512<<10)
		// The state went into the group's last record a piece at a time,
		// and the whole one of the baseline scrape was let go.
		require.Nil(t, tg.state)
		require.Less(t, cap(tg.statePiece), 2*marshalPiece)
		require.NotEmpty(t, drainQueue(t, q))
		b, err := q.LoadState(tg.stateKey)
		require.NoError(t, err)
		want, err := tg.conv.MarshalState()
		require.NoError(t, err)
		require.Equal(t, want, b)
	})

	// With the shipped batch (5,000 lines, 4 MiB) a batch's worth of lines
	// is about 1 MB here. A grouped scrape opens its group after
	// groupFirst bytes and hands over records of a quarter of a batch,
	// which the disk queue joins back into whole batches when it sends.
	t.Run("disk queue with the default batch", func(t *testing.T) {
		srv := pageServer(t, page1, page2)
		cfg := testConfig(srv.URL + "/metrics")
		cfg.Batch = config.Default().Batch
		q, err := diskqueue.Open(t.TempDir(), diskqueue.Options{MaxBytes: 64 << 20, RecordMaxLines: cfg.Batch.MaxLines, RecordMaxBytes: int(cfg.Batch.MaxBytes)}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = q.Close() })
		cg := &countGroups{Queue: q}
		c, _ := newTestCollector(t, cfg, cg)
		tick(c, t0)
		require.NotEmpty(t, drainQueue(t, q))
		tick(c, t0.Add(10*time.Second))
		tg := c.sources[0].targets[srv.URL+"/metrics"]
		require.Equal(t, 1, cg.begun)
		require.GreaterOrEqual(t, cg.records, 12, "records of 1,250 lines")
		// Opened at defaultFlushEvery with records of a whole batch, it was
		// 1,114,112 bytes.
		require.Less(t, cap(tg.out), 512<<10)
		batches, lines := 0, 0
		for {
			b, err := q.Next(context.Background(), cfg.Batch.MaxLines, int(cfg.Batch.MaxBytes))
			require.NoError(t, err)
			batches++
			lines += b.Lines
			require.NoError(t, q.Commit(b))
			if q.Stats().Records == 0 {
				break
			}
			require.Equal(t, cfg.Batch.MaxLines, b.Lines, "every batch but the last is full")
		}
		require.Equal(t, (lines+cfg.Batch.MaxLines-1)/cfg.Batch.MaxLines, batches)
	})
}

// TestStateInPieces: the state counted and written a piece at a time is the
// state marshalled whole, byte for byte, through a scratch buffer that stays
// about a piece long.
func TestStateInPieces(t *testing.T) {
	c := newTestConverter(t, "traefik")
	p := NewParser()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= 2; i++ {
		p.Reset(traefikpage.Generate(20, i))
		_, _, err := c.Convert(p, t0.Add(time.Duration(i)*10*time.Second), nil)
		require.NoError(t, err)
	}
	whole, err := c.MarshalState()
	require.NoError(t, err)
	require.Greater(t, len(whole), 4*marshalPiece, "several pieces")
	require.Equal(t, len(whole), c.stateSize())
	var got bytes.Buffer
	scratch, err := c.writeState(&got, nil)
	require.NoError(t, err)
	require.Equal(t, whole, got.Bytes())
	require.Less(t, cap(scratch), 2*marshalPiece)
}
