package collector

import (
	"math"
	"strconv"
)

// histogramQuantiles are the fields Traefik v2 wrote for a histogram.
var histogramQuantiles = [...]struct {
	q     float64
	field string
}{{0.50, ",p50="}, {0.90, ",p90="}, {0.95, ",p95="}, {0.99, ",p99="}}

// traefik converts one sample in the traefik schema. le is the bucket bound
// of a _bucket sample or the quantile of a summary sample.
func (c *Converter) traefik(role sampleRole, le, v float64, out []byte, stats *ConvertStats) []byte {
	switch c.fi.typ {
	case Counter:
		se := c.lookup(Counter)
		se.seen = c.now
		prev := se.count
		se.count = v
		if c.baseline {
			return out
		}
		d := v - prev
		if c.restarted || v < prev {
			d = v // reset: the counter started again from zero
		}
		if d <= 0 {
			return out
		}
		out = append(out, c.key...)
		out = append(out, " count="...)
		out = appendFloat(out, d)
		out = append(out, c.tsText...)
		stats.Points++
		return out
	case Histogram, Summary:
		se := c.lookup(c.fi.typ)
		h := se.hist(c.gen, c.now)
		if !h.pending {
			h.pending = true
			c.pending = append(c.pending, se)
		}
		cur := &h.cur
		switch role {
		case roleBucket:
			h.addBucket(le, v)
		case roleQuantile:
			x := cur.extra()
			x.quantiles = append(x.quantiles, quantileValue{le, v})
		case roleSum:
			cur.sum, cur.hasSum = v, true
		case roleCount:
			cur.count, cur.hasCount = v, true
		}
		return out
	}
	// Gauge and untyped.
	stats.Points++
	return c.appendValueLine(out, v)
}

// lookup finds or creates the state of the series whose key is in c.key.
// Pages list their series in the same order every time, so the series
// after the previous one found is tried before the map: a comparison of
// keys instead of hashing them and a random walk through a large map.
func (c *Converter) lookup(kind FamilyType) *series {
	if c.last != nil && c.last.key == string(c.key) {
		return c.last
	}
	var se *series
	if c.pos < len(c.order) && c.order[c.pos].key == string(c.key) && !c.order[c.pos].dead {
		se = c.order[c.pos]
		c.pos++
	} else if se = c.st.series[string(c.key)]; se != nil {
		if int(se.idx) < len(c.order) && c.order[se.idx] == se {
			c.pos = int(se.idx) + 1 // back in step with the previous scrape
		}
	}
	switch {
	case se == nil:
		se = &series{key: string(c.key), kind: kind}
		c.st.series[se.key] = se
		c.st.sorted = nil
	case se.kind != kind:
		// The family changed type: start the series afresh.
		*se = series{key: se.key, kind: kind}
	}
	se.idx = int32(len(c.next))
	c.next = append(c.next, se)
	c.last = se
	return se
}

// flush writes a histogram or summary series at the end of its family and
// remembers its values for the next scrape.
func (c *Converter) flush(se *series, out []byte, stats *ConvertStats) []byte {
	h := se.h
	cur := &h.cur
	if se.kind == Summary {
		reset := c.restarted || cur.count < se.count
		prevCount, prevSum := se.count, h.sum
		if reset {
			prevCount, prevSum = 0, 0
		}
		dc, ds := cur.count-prevCount, cur.sum-prevSum
		se.count = cur.count
		if cur.hasSum {
			h.sum = cur.sum
		}
		if c.baseline || !cur.hasCount || dc <= 0 {
			return out
		}
		out = append(out, se.key...)
		out = append(out, " count="...)
		out = appendFloat(out, dc)
		var qs []quantileValue
		if cur.x != nil {
			qs = cur.x.quantiles
		}
		for _, q := range qs {
			out = append(out, ",p"...)
			out = strconv.AppendFloat(out, math.Round(q.q*100*1e6)/1e6, 'f', -1, 64)
			out = append(out, '=')
			out = appendFloat(out, q.v)
		}
		if cur.hasSum {
			out = append(out, ",sum="...)
			out = appendFloat(out, ds)
		}
		out = append(out, c.tsText...)
		stats.Points++
		return out
	}

	changed := h.layoutChanged(c.lastBounds)
	c.lastBounds = h.bounds
	n := len(h.bounds)
	hasInf := n > 0 && math.IsInf(h.bounds[n-1], 1)
	if !cur.hasCount && hasInf {
		cur.count = cur.buckets[n-1]
	}
	reset := changed || c.restarted || cur.count < se.count
	for i := 0; i < n && !reset; i++ {
		reset = cur.buckets[i] < h.buckets[i]
	}
	prevCount, prevSum := se.count, h.sum
	if reset {
		prevCount, prevSum = 0, 0
	}
	dc, ds := cur.count-prevCount, cur.sum-prevSum
	// Bucket increases, kept non-decreasing as histogram_quantile does.
	d := c.deltas[:0]
	for i := 0; i < n; i++ {
		x := cur.buckets[i]
		if !reset {
			x -= h.buckets[i]
		}
		if i > 0 && x < d[i-1] {
			x = d[i-1]
		}
		d = append(d, max(x, 0))
	}
	c.deltas = d
	se.count = cur.count
	if cur.hasSum {
		h.sum = cur.sum
	}
	copy(h.buckets, cur.buckets)
	if c.baseline || dc <= 0 {
		return out
	}
	out = append(out, se.key...)
	out = append(out, " count="...)
	out = appendFloat(out, dc)
	if hasInf && d[n-1] > 0 {
		for _, hq := range histogramQuantiles {
			if v := bucketQuantile(hq.q, h.bounds, d); !math.IsNaN(v) {
				out = append(out, hq.field...)
				out = appendFloat(out, v)
			}
		}
	}
	if cur.hasSum {
		out = append(out, ",sum="...)
		out = appendFloat(out, ds)
	}
	out = append(out, c.tsText...)
	stats.Points++
	return out
}

// telegraf converts one sample in the telegraf schema. The samples of a
// histogram or summary series become the fields of one line; were a series
// split on the page, it would make two lines with the same series and
// timestamp, whose fields InfluxDB merges into one point.
func (c *Converter) telegraf(role sampleRole, b boundEntry, v float64, out []byte, stats *ConvertStats) []byte {
	var field string
	switch role {
	case roleBucket, roleQuantile:
		field = b.field
	case roleSum:
		field = "sum"
	case roleCount:
		field = "count"
	default:
		stats.Points++
		return c.appendValueLine(out, v)
	}
	if c.open && string(out[c.openStart:c.openStart+c.openKeyLen]) == string(c.key) {
		out = append(out, ',')
	} else {
		out = c.closeOpen(out)
		c.open, c.openStart, c.openKeyLen = true, len(out), len(c.key)
		out = append(out, c.key...)
		out = append(out, ' ')
		stats.Points++
	}
	out = append(out, field...)
	out = append(out, '=')
	return appendFloat(out, v)
}

// closeOpen ends the telegraf line being built, if any.
func (c *Converter) closeOpen(out []byte) []byte {
	if c.open {
		out = append(out, c.tsText...)
		c.open = false
	}
	return out
}

// MarshalState returns what the converter remembers about its target (last
// values of every counter, histogram and summary series, last timestamp,
// process start time), for UnmarshalState after a restart.
func (c *Converter) MarshalState() ([]byte, error) {
	return c.appendState(nil), nil
}

// appendState is MarshalState into a buffer the caller reuses: on a large
// page the state is megabytes, saved after every scrape.
func (c *Converter) appendState(b []byte) []byte {
	return c.st.appendMarshal(b)
}

// stateSeries is the number of series the converter remembers.
func (c *Converter) stateSeries() int { return len(c.st.series) }

// UnmarshalState replaces the converter's memory with a MarshalState
// result. On error the converter keeps its memory.
func (c *Converter) UnmarshalState(b []byte) error {
	st, err := unmarshalState(b)
	if err != nil {
		return err
	}
	c.st = st
	c.last = nil
	c.pending = c.pending[:0]
	c.order, c.next, c.pos = c.order[:0], c.next[:0], 0
	return nil
}

// appendValueLine writes the one-field line of a counter, gauge or untyped
// sample: the series key in c.key, the family's value field, v, the
// scrape's timestamp.
func (c *Converter) appendValueLine(out []byte, v float64) []byte {
	out = append(out, c.key...)
	out = append(out, c.fi.valKey...)
	out = appendFloat(out, v)
	return append(out, c.tsText...)
}
