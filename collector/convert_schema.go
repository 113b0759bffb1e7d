package collector

import (
	"io"
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
		id := c.lookup(Counter)
		if id < 0 {
			c.skip(stats, SkipSeriesLimit)
			return out
		}
		se := &c.st.slots[id]
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
		id := c.lookup(c.fi.typ)
		if id < 0 {
			c.skip(stats, SkipSeriesLimit)
			return out
		}
		p := c.pendingFor(id)
		switch role {
		case roleBucket:
			p.les = append(p.les, le)
			p.buckets = append(p.buckets, v)
		case roleQuantile:
			p.quantiles = append(p.quantiles, quantileValue{le, v})
		case roleSum:
			p.sum, p.hasSum = v, true
		case roleCount:
			p.count, p.hasCount = v, true
		}
		if p.hasSum && p.hasCount && p == &c.pending[len(c.pending)-1] {
			// _sum and _count close a series on every page we know of
			// (text format and OpenMetrics): write it now rather than
			// at the end of its family, so that the family's series are
			// not all held at once. Were more of its samples to follow,
			// they would make a second line.
			out = c.flush(p, out, stats)
			c.st.hists[c.st.slots[id].hist].gen = 0
			c.pendKeys = c.pendKeys[:p.keyOff]
			c.pending = c.pending[:len(c.pending)-1]
		}
		return out
	}
	// Gauge and untyped.
	stats.Points++
	return c.appendValueLine(out, v)
}

// lookup finds or creates the state's slot of the series whose key is in
// c.skey, and returns -1 when it would be one series over MaxSeries. Pages
// list their series in the same order every time, and slots are in the
// order series were first met, so the slot after the previous one found is
// tried before hashing the key.
func (c *Converter) lookup(kind FamilyType) int32 {
	st := c.st
	var id int32
	switch {
	case c.lastID >= 0 && string(st.key(c.lastID)) == string(c.skey):
		id = c.lastID
	case int(c.expect) < len(st.slots) && string(st.key(c.expect)) == string(c.skey):
		id = c.expect
		c.expect++
	default:
		if id = st.find(c.skey); id >= 0 {
			c.expect = id + 1
			break
		}
		if c.max > 0 && len(st.slots) >= c.max {
			return -1
		}
		// A new series; the next one is likely where the page was.
		if id = st.add(c.skey, kind); id < 0 {
			return -1
		}
	}
	if st.slots[id].kind != kind {
		// The family changed type: start the series afresh.
		st.setKind(id, kind)
	}
	c.lastID = id
	return id
}

// pendingSeries is a histogram or summary series' samples in one scrape,
// written at the end of its family.
type pendingSeries struct {
	id               int32
	keyOff, keyLen   int
	count, sum       float64
	hasCount, hasSum bool
	les, buckets     []float64
	quantiles        []quantileValue
}

type quantileValue struct {
	q, v float64
}

// pendingFor returns the pending entry of slot id, making it on the
// series' first sample in its family.
func (c *Converter) pendingFor(id int32) *pendingSeries {
	se := &c.st.slots[id]
	se.seen = c.now
	h := &c.st.hists[se.hist]
	if h.gen == c.famGen && int(h.pend) < len(c.pending) && c.pending[h.pend].id == id {
		return &c.pending[h.pend]
	}
	h.gen, h.pend = c.famGen, int32(len(c.pending))
	if len(c.pending) < cap(c.pending) {
		c.pending = c.pending[:len(c.pending)+1]
	} else {
		c.pending = append(c.pending, pendingSeries{})
	}
	p := &c.pending[len(c.pending)-1]
	p.id = id
	p.count, p.sum, p.hasCount, p.hasSum = 0, 0, false, false
	p.les, p.buckets, p.quantiles = p.les[:0], p.buckets[:0], p.quantiles[:0]
	p.keyOff, p.keyLen = len(c.pendKeys), len(c.key)
	c.pendKeys = append(c.pendKeys, c.key...)
	return p
}

// flush writes a histogram or summary series at the end of its family and
// remembers its values for the next scrape.
func (c *Converter) flush(p *pendingSeries, out []byte, stats *ConvertStats) []byte {
	st := c.st
	se := &st.slots[p.id]
	h := &st.hists[se.hist]
	key := c.pendKeys[p.keyOff : p.keyOff+p.keyLen]
	if se.kind == Summary {
		reset := c.restarted || p.count < se.count
		prevCount, prevSum := se.count, h.sum
		if reset {
			prevCount, prevSum = 0, 0
		}
		dc, ds := p.count-prevCount, p.sum-prevSum
		se.count = p.count
		if p.hasSum {
			h.sum = p.sum
		}
		if c.baseline || !p.hasCount || dc <= 0 {
			return out
		}
		out = append(out, key...)
		out = append(out, " count="...)
		out = appendFloat(out, dc)
		for _, q := range p.quantiles {
			out = append(out, ",p"...)
			out = strconv.AppendFloat(out, math.Round(q.q*100*1e6)/1e6, 'f', -1, 64)
			out = append(out, '=')
			out = appendFloat(out, q.v)
		}
		if p.hasSum {
			out = append(out, ",sum="...)
			out = appendFloat(out, ds)
		}
		out = append(out, c.tsText...)
		stats.Points++
		return out
	}

	// Pages list buckets in ascending order; sort them if not.
	les, cur := p.les, p.buckets
	for i := 1; i < len(les); i++ {
		for j := i; j > 0 && les[j] < les[j-1]; j-- {
			les[j], les[j-1] = les[j-1], les[j]
			cur[j], cur[j-1] = cur[j-1], cur[j]
		}
	}
	changed := st.setLayout(h, les)
	bounds, prevBuckets := st.histVals(h)
	n := len(bounds)
	hasInf := n > 0 && math.IsInf(bounds[n-1], 1)
	count := p.count
	if !p.hasCount && hasInf {
		count = cur[n-1]
	}
	reset := changed || c.restarted || count < se.count
	for i := 0; i < n && !reset; i++ {
		reset = cur[i] < prevBuckets[i]
	}
	prevCount, prevSum := se.count, h.sum
	if reset {
		prevCount, prevSum = 0, 0
	}
	dc, ds := count-prevCount, p.sum-prevSum
	// Bucket increases, kept non-decreasing as histogram_quantile does.
	d := c.deltas[:0]
	for i := 0; i < n; i++ {
		x := cur[i]
		if !reset {
			x -= prevBuckets[i]
		}
		if i > 0 && x < d[i-1] {
			x = d[i-1]
		}
		d = append(d, max(x, 0))
	}
	c.deltas = d
	se.count = count
	if p.hasSum {
		h.sum = p.sum
	}
	copy(prevBuckets, cur)
	if c.baseline || dc <= 0 {
		return out
	}
	out = append(out, key...)
	out = append(out, " count="...)
	out = appendFloat(out, dc)
	if hasInf && d[n-1] > 0 {
		for _, hq := range histogramQuantiles {
			if v := bucketQuantile(hq.q, bounds, d); !math.IsNaN(v) {
				out = append(out, hq.field...)
				out = appendFloat(out, v)
			}
		}
	}
	if p.hasSum {
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

// stateSize is the length of the saved state, counted without marshalling
// it.
func (c *Converter) stateSize() int { return c.st.marshalSize() }

// writeState writes the saved state to w a piece at a time through scratch
// (returned for the next call): what appendState makes, never held whole.
func (c *Converter) writeState(w io.Writer, scratch []byte) ([]byte, error) {
	var err error
	rest := c.st.marshal(scratch[:0], func(p []byte) {
		if err == nil {
			_, err = w.Write(p)
		}
	})
	if err == nil {
		_, err = w.Write(rest)
	}
	return rest[:0], err
}

// stateSeries is the number of series the converter remembers.
func (c *Converter) stateSeries() int { return len(c.st.slots) }

// UnmarshalState replaces the converter's memory with a MarshalState
// result. On error the converter keeps its memory.
func (c *Converter) UnmarshalState(b []byte) error {
	st, err := unmarshalState(b)
	if err != nil {
		return err
	}
	c.st = st
	c.stateReplaced()
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
