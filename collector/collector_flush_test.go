package collector

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

// TestConvertFlushRecords: records handed to the Appender while converting
// are, record for record, those appendRecords cuts from the whole scrape's
// line protocol, in every schema (telegraf's line being built included),
// whatever the flush size and record limits.
func TestConvertFlushRecords(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	var pages []string
	pages = append(pages, readScrapes(t)...)
	for r := 1; r <= 2; r++ {
		pages = append(pages, string(traefikpage.Generate(20, r)))
	}
	for _, schema := range []string{config.SchemaTraefik, config.SchemaPrometheus, config.SchemaTelegraf} {
		for _, lim := range []struct{ first, every, maxLines, maxBytes int }{
			{1, 1, 1, 1}, {100, 100, 7, 1 << 20}, {5000, 5000, 5000, 4 << 20}, {1 << 20, 1 << 20, 5000, 4 << 20}, {3000, 3000, 50, 2000},
			{1, 1 << 20, 5000, 4 << 20}, {1, 1 << 20, 50, 2000}, {1, 3000, 7, 1 << 20},
			{1 + rnd.IntN(10000), 1 + rnd.IntN(10000), 1 + rnd.IntN(100), 1 + rnd.IntN(20000)},
		} {
			t.Run(fmt.Sprintf("%s/%d,%d,%d,%d", schema, lim.first, lim.every, lim.maxLines, lim.maxBytes), func(t *testing.T) {
				whole, flushed := newTestConverter(t, schema), newTestConverter(t, schema)
				p := NewParser()
				for i, page := range pages {
					ts := t0.Add(time.Duration(i) * 10 * time.Second)
					want, got := &appendRecorder{}, &appendRecorder{}
					wantSt := convertRecords(t, whole, p, page, ts, want, lim.maxLines, lim.maxBytes)
					flushed.setFlush(lim.first, lim.every, false, flushTo(t, got, lim.maxLines, lim.maxBytes))
					st := convertRecords(t, flushed, p, page, ts, got, lim.maxLines, lim.maxBytes)
					require.Equal(t, wantSt, st)
					_, wantRecs, wantLines := want.take()
					_, gotRecs, gotLines := got.take()
					require.Equal(t, wantRecs, gotRecs, "scrape %d", i)
					require.Equal(t, wantLines, gotLines, "scrape %d", i)
				}
			})
		}
	}
}

// convertRecords converts page with c (handing records to a as it goes if
// c has a flush function) and appends the rest to a in records.
func convertRecords(t *testing.T, c *Converter, p *Parser, page string, ts time.Time, a Appender, maxLines, maxBytes int) ConvertStats {
	t.Helper()
	p.Reset([]byte(page))
	rest, st, err := c.Convert(p, ts, nil)
	require.NoError(t, err)
	require.NoError(t, appendRecords(a, rest, maxLines, maxBytes))
	return st
}

// flushTo is a flush function handing the full records of complete lines to a.
func flushTo(t *testing.T, a Appender, maxLines, maxBytes int) func(done []byte) (int, int) {
	return func(done []byte) (int, int) {
		require.True(t, len(done) == 0 || strings.HasSuffix(string(done), "\n"), "complete lines")
		k, more, err := appendFullRecords(a, done, maxLines, maxBytes)
		require.NoError(t, err)
		return k, more
	}
}

// ownedRecorder keeps the records it is given without copying them, as
// sink.MemoryQueue's AppendOwned does, and what each read when it came.
type ownedRecorder struct {
	kept []([]byte)
	seen []string
}

func (r *ownedRecorder) AppendOwned(lines []byte, n int) error {
	r.kept = append(r.kept, lines)
	r.seen = append(r.seen, string(lines))
	return nil
}

func (r *ownedRecorder) Append(lines []byte, n int) error {
	panic("the converter's records go through AppendOwned")
}

// TestConvertFlushOwned: with owned flushing the converter hands its
// records over and never writes to them again. Every record, kept by
// reference over all the pages, still reads as it did when handed over,
// and the records are those of a whole scrape cut afterwards.
func TestConvertFlushOwned(t *testing.T) {
	var pages []string
	pages = append(pages, readScrapes(t)...)
	for r := 1; r <= 3; r++ {
		pages = append(pages, string(traefikpage.Generate(20, r)))
	}
	for _, schema := range []string{config.SchemaTraefik, config.SchemaPrometheus, config.SchemaTelegraf} {
		for _, lim := range []struct{ every, maxLines, maxBytes int }{
			{1, 1, 1}, {1 << 20, 5000, 4 << 20}, {3000, 50, 2000}, {1 << 20, 7, 1 << 20}, {100, 1000, 1 << 20},
		} {
			t.Run(fmt.Sprintf("%s/%d,%d,%d", schema, lim.every, lim.maxLines, lim.maxBytes), func(t *testing.T) {
				whole, flushed := newTestConverter(t, schema), newTestConverter(t, schema)
				kept := &ownedRecorder{}
				a := owningAppender{kept}
				var want []string
				p := NewParser()
				for i, page := range pages {
					ts := t0.Add(time.Duration(i) * 10 * time.Second)
					rec := &appendRecorder{}
					wantSt := convertRecords(t, whole, p, page, ts, rec, lim.maxLines, lim.maxBytes)
					_, recs, _ := rec.take()
					want = append(want, recs...)
					// As the collector does: the rest is handed over too, and
					// the next scrape starts without a buffer.
					flushed.setFlush(1, lim.every, true, flushTo(t, a, lim.maxLines, lim.maxBytes))
					require.Equal(t, wantSt, convertRecords(t, flushed, p, page, ts, a, lim.maxLines, lim.maxBytes))
				}
				require.Equal(t, want, kept.seen, "the records handed over")
				for i, b := range kept.kept {
					require.Equal(t, kept.seen[i], string(b), "record %d changed after it was handed over", i)
				}
			})
		}
	}
}
