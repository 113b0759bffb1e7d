package sink

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

// A field type conflict that comes back with every batch warns once, then
// at most once a minute with the count of those not logged, while every
// dropped point is still counted. Against a real influxd, whose answer is
// the one that repeats in production.
func TestRepeatedRefusalIsRateLimited(t *testing.T) {
	srv := influxtest.Start(t)
	require.NoError(t, srv.CreateDatabase(t.Context(), "tib"))
	h0 := newHarness(t, realConfig(srv))
	h0.appendLines(t, "conflict count=1i,other=1i 1700000000")
	require.NoError(t, flushFor(h0, 20*time.Second))

	cfg := realConfig(srv)
	cfg.Batch.MaxLines = 2 // one batch per record
	h := newHarness(t, cfg)
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	h.sink.refusals.now = func() time.Time { return clock }
	ts := 1700000001
	// batch writes one conflicting line (on field) and one good one.
	batch := func(t *testing.T, field string) {
		t.Helper()
		h.appendLines(t,
			fmt.Sprintf("conflict %s=2 %d", field, ts),
			fmt.Sprintf("ok count=1 %d", ts))
		ts++
		require.NoError(t, flushFor(h, 20*time.Second))
	}
	warns := func() []logRecord { return h.logs.find(slog.LevelWarn, "influxdb dropped part of a batch") }

	steps := []struct {
		name      string
		every     time.Duration // clock step before each batch
		field     string
		batches   int
		wantWarns int    // in all, after the step
		wantNote  string // in the last warning's message
	}{
		{name: "first conflict warns", field: "count", batches: 1, wantWarns: 1},
		{name: "repeats within the minute are quiet", every: 3 * time.Second, field: "count", batches: 19, wantWarns: 1},
		{name: "another conflict warns at once", field: "other", batches: 3, wantWarns: 2},
		{name: "a minute on, the first warns with the count", every: time.Minute, field: "count", batches: 1, wantWarns: 3, wantNote: " (19 more since 12:00:00)"},
		{name: "and is quiet again", field: "count", batches: 4, wantWarns: 3},
	}
	batches := 0
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			for range st.batches {
				clock = clock.Add(st.every)
				batch(t, st.field)
				batches++
			}
			got := warns()
			require.Len(t, got, st.wantWarns, h.logs.all())
			last := got[len(got)-1]
			require.Contains(t, last.Attrs, "field type conflict")
			if st.wantNote != "" {
				require.Equal(t, "influxdb dropped part of a batch; the rest is written"+st.wantNote, last.Msg)
			}
			require.Equal(t, float64(batches), h.metric(t, "traefik_influxdb_bridge_points_dropped_total", "reason", "partial_write"), "every dropped point is counted")
			require.Equal(t, float64(batches), h.metric(t, "traefik_influxdb_bridge_points_written_total"))
		})
	}
	require.NotContains(t, h.logs.all(), srv.Password)
}

func TestRefusalLog(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := start
	r := refusalLog{now: func() time.Time { return clock }}

	t.Run("answers that differ only in what changes per batch are one refusal", func(t *testing.T) {
		_, ok := r.allow("partial", "partial write: unable to parse 'm v=': missing field value dropped=0")
		require.True(t, ok)
		_, ok = r.allow("partial", "partial write: unable to parse 'n x=': missing field value dropped=0")
		require.False(t, ok)
		_, ok = r.allow("rejected", "unable to parse 'n x=': missing field value")
		require.True(t, ok, "another kind")
		_, ok = r.allow("partial", `partial write: field type conflict: input field "a" on measurement "m" is type float, already exists as type integer dropped=3`)
		require.True(t, ok)
		_, ok = r.allow("partial", `partial write: field type conflict: input field "a" on measurement "m" is type float, already exists as type integer dropped=7`)
		require.False(t, ok)
		_, ok = r.allow("partial", `partial write: field type conflict: input field "b" on measurement "m" is type float, already exists as type integer dropped=3`)
		require.True(t, ok, "another field")
	})
	t.Run("no note when nothing was left out", func(t *testing.T) {
		clock = clock.Add(time.Minute)
		note, ok := r.allow("rejected", "unable to parse 'n x=': missing field value")
		require.True(t, ok)
		require.Empty(t, note)
	})
	t.Run("memory is bounded", func(t *testing.T) {
		for i := range 3 * maxRefusals {
			_, ok := r.allow("partial", fmt.Sprintf("partial write: reason %d dropped=1", i))
			require.True(t, ok)
		}
		require.Len(t, r.seen, maxRefusals)
	})
}
