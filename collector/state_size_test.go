package collector

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

func parserOf(page []byte) *Parser {
	p := NewParser()
	p.Reset(page)
	return p
}

// requireSizeExact checks the state's counted length against its
// marshalled form.
func requireSizeExact(t require.TestingT, c *Converter) {
	require.Equal(t, len(c.st.appendMarshal(nil)), c.stateSize())
}

// TestStateMarshalSize: the length counted for a grouped scrape's state
// (the disk queue writes it in the record's header before the state) is
// the length of the state marshalled, for the real Traefik's pages, the
// generated ones, an empty state, one compacted, and states whose values
// take every encoding (whole numbers at each varint length, fractions,
// negatives, NaN, infinities, -0, and past 2^62).
func TestStateMarshalSize(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	t.Run("pages", func(t *testing.T) {
		c := newTestConverter(t, "traefik")
		requireSizeExact(t, c) // nothing yet: no series, no names
		for i, page := range readScrapes(t) {
			convertPage(t, c, page, t0.Add(time.Duration(i)*10*time.Second))
			requireSizeExact(t, c)
		}
		for i, services := range []int{1, 20, 100} {
			d := newTestConverter(t, "traefik")
			for r := 1; r <= 2; r++ {
				convertPage(t, d, string(traefikpage.Generate(services, r)), t0.Add(time.Duration(10*i+r)*time.Second))
				requireSizeExact(t, d)
			}
		}
	})
	t.Run("compacted", func(t *testing.T) {
		c := newTestConverter(t, "traefik")
		convertPage(t, c, string(traefikpage.Generate(20, 1)), t0)
		convertPage(t, c, string(traefikpage.Generate(2, 2)), t0.Add(2*time.Hour))
		requireSizeExact(t, c)
	})
	edge := []float64{0, 1, 63, 64, 8191, 8192, 1 << 40, 1<<62 - 1024, 1 << 62, 1 << 63, 1.5, 0.1, -1, math.Copysign(0, -1),
		math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64}
	rapid.Check(t, func(t *rapid.T) {
		c, err := NewConverter(ConvertOptions{Schema: "traefik", Precision: time.Second, SeriesTTL: time.Hour})
		require.NoError(t, err)
		for r := range 2 {
			// Some pages are refused part way (a label given twice): the
			// state keeps what came before.
			_, _, _ = c.Convert(parserOf([]byte(genHistogramPage(t, r))), t0.Add(time.Duration(r)*10*time.Second), nil)
		}
		val := func(label string) float64 {
			if rapid.Bool().Draw(t, label+"_edge") {
				return rapid.SampledFrom(edge).Draw(t, label)
			}
			return rapid.Float64().Draw(t, label)
		}
		st := c.st
		st.lastTS = rapid.Int64().Draw(t, "lastTS")
		st.lastSweep = rapid.Int64().Draw(t, "lastSweep")
		for i := range st.slots {
			s := &st.slots[i]
			s.count = val("count")
			s.seen = rapid.Int64Range(-1<<50, 1<<50).Draw(t, "seen")
			if s.hist >= 0 {
				h := &st.hists[s.hist]
				h.sum = val("sum")
				_, counts := st.histVals(h)
				for j := range counts {
					counts[j] = val("bucket")
				}
			}
		}
		requireSizeExact(t, c)
	})
}

// TestCommonPrefix: the word-at-a-time comparison agrees with a byte at a
// time, wherever the first difference falls.
func TestCommonPrefix(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.SliceOfN(rapid.ByteRange('a', 'c'), 0, 40).Draw(t, "a")
		b := append([]byte(nil), a[:rapid.IntRange(0, len(a)).Draw(t, "keep")]...)
		b = append(b, rapid.SliceOfN(rapid.ByteRange('a', 'c'), 0, 20).Draw(t, "rest")...)
		want := 0
		for want < len(a) && want < len(b) && a[want] == b[want] {
			want++
		}
		require.Equal(t, want, commonPrefix(a, b))
		require.Equal(t, want, commonPrefix(b, a))
		require.Equal(t, bytes.Equal(a, b), want == len(a) && want == len(b))
	})
}
