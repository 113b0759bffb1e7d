package collector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// state is what the traefik schema remembers about one target between
// scrapes: the previous cumulative values of every counter, histogram and
// summary series, so that it can write increases. It is plain data so that
// it can be saved next to a durable queue and restored after a restart.
type state struct {
	// primed is set after the first complete scrape: that one is the
	// baseline and writes no counter.
	primed bool
	// lastTS is the timestamp (in precision units) of the last scrape
	// written, so that the next one can be made strictly greater.
	lastTS int64
	// processStart is the target's process_start_time_seconds; 0 if unknown.
	processStart float64
	// series is keyed by the line-protocol key (escaped measurement and
	// sorted tags), so a reorder of labels on the page is the same series.
	series map[string]*series
	// lastSweep is when (unix ns of a scrape) series were last expired.
	lastSweep int64
}

// series is one counter, histogram or summary series (a histogram's labels
// without le; a summary's without quantile). Counters are most of a page,
// so what only histograms and summaries need hangs off h.
type series struct {
	key   string
	kind  FamilyType
	dead  bool    // expired: no longer in the map
	idx   int     // position in the converter's scrape order; not saved
	seen  int64   // unix ns of the last scrape that had it
	count float64 // counter value; histogram/summary _count, as last committed
	h     *histState
}

// histState is the rest of a histogram or summary series.
type histState struct {
	// Committed values from the previous scrape.
	sum     float64   // _sum
	bounds  []float64 // histogram upper bounds, ascending
	buckets []float64 // cumulative bucket counts, same length as bounds

	// The scrape being converted; not saved.
	gen      uint64
	cur      scrapeValues
	pending  bool // queued for writing at the end of its family
	layoutOK bool // the buckets so far matched bounds in order
}

// scrapeValues collects a histogram or summary series' samples in one scrape.
type scrapeValues struct {
	count, sum       float64
	hasCount, hasSum bool
	n                int       // buckets seen
	buckets          []float64 // when layoutOK, indexed like histState.bounds
	bounds           []float64 // when !layoutOK, the new layout
	quantiles        []quantileValue
}

type quantileValue struct {
	q, v float64
}

func newState() *state {
	return &state{series: make(map[string]*series)}
}

// hist readies s for a new scrape the first time it is seen in it, and
// returns its histogram or summary state.
func (s *series) hist(gen uint64, now int64) *histState {
	h := s.h
	if h == nil {
		h = &histState{}
		s.h = h
	}
	if h.gen == gen {
		return h
	}
	h.gen = gen
	s.seen = now
	c := &h.cur
	c.count, c.sum = 0, 0
	c.hasCount, c.hasSum = false, false
	c.n = 0
	c.quantiles = c.quantiles[:0]
	c.bounds = c.bounds[:0]
	if cap(c.buckets) < len(h.bounds) {
		c.buckets = make([]float64, len(h.bounds))
	}
	c.buckets = c.buckets[:len(h.bounds)]
	h.layoutOK = true
	return h
}

// addBucket records one _bucket sample with upper bound le.
func (h *histState) addBucket(le, v float64) {
	c := &h.cur
	if h.layoutOK {
		if c.n < len(h.bounds) && h.bounds[c.n] == le {
			c.buckets[c.n] = v
			c.n++
			return
		}
		// The page's buckets differ from the last scrape's: keep the
		// prefix that matched and collect the new layout.
		h.layoutOK = false
		c.bounds = append(c.bounds[:0], h.bounds[:c.n]...)
		c.buckets = c.buckets[:c.n]
	}
	c.bounds = append(c.bounds, le)
	c.buckets = append(c.buckets, v)
	c.n++
}

// layoutChanged reports whether this scrape's buckets differ from the
// previous scrape's, and if so makes the new layout current (sorted) with
// zero previous counts.
func (h *histState) layoutChanged() bool {
	c := &h.cur
	if h.layoutOK && c.n == len(h.bounds) {
		return false
	}
	if h.layoutOK { // fewer buckets than before
		c.bounds = append(c.bounds[:0], h.bounds[:c.n]...)
		c.buckets = c.buckets[:c.n]
	}
	sort.Sort(byBound{c.bounds, c.buckets})
	h.bounds = append(h.bounds[:0], c.bounds...)
	h.buckets = append(h.buckets[:0], make([]float64, len(c.bounds))...)
	h.layoutOK = true
	return true
}

type byBound struct{ b, v []float64 }

func (x byBound) Len() int           { return len(x.b) }
func (x byBound) Less(i, j int) bool { return x.b[i] < x.b[j] }
func (x byBound) Swap(i, j int) {
	x.b[i], x.b[j] = x.b[j], x.b[i]
	x.v[i], x.v[j] = x.v[j], x.v[i]
}

// bucketQuantile estimates the q-quantile from cumulative bucket counts as
// Prometheus' histogram_quantile does: find the bucket holding rank q*total,
// interpolate linearly inside it (lower bound 0 for the first bucket), and
// answer the highest finite bound when the rank falls in the +Inf bucket.
// The estimate assumes observations are spread evenly inside a bucket; with
// Traefik's default buckets (0.1, 0.3, 1.2, 5) it is coarse, as Prometheus'
// own is. counts must be non-decreasing and the last bound +Inf. It returns
// NaN when there is nothing to estimate from.
func bucketQuantile(q float64, bounds, counts []float64) float64 {
	n := len(bounds)
	if n < 2 || !math.IsInf(bounds[n-1], 1) {
		return math.NaN()
	}
	total := counts[n-1]
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	b := sort.Search(n-1, func(i int) bool { return counts[i] >= rank })
	if b == n-1 {
		return bounds[n-2]
	}
	if b == 0 && bounds[0] <= 0 {
		return bounds[0]
	}
	start, end, count := 0.0, bounds[b], counts[b]
	if b > 0 {
		start = bounds[b-1]
		count -= counts[b-1]
		rank -= counts[b-1]
	}
	return start + (end-start)*(rank/count)
}

// expire forgets series not seen since before cutoff (unix ns).
func (st *state) expire(cutoff int64) int {
	n := 0
	for k, s := range st.series {
		if s.seen < cutoff {
			s.dead = true
			delete(st.series, k)
			n++
		}
	}
	return n
}

// The saved form: "TIBS", a version byte, then uvarints and float64 bits
// (little endian). Sizes are checked against what is left before anything
// is allocated, so a damaged file is an error, not a panic or a huge
// allocation.
const (
	stateMagic   = "TIBS"
	stateVersion = 1
)

// appendMarshal appends the saved form to b. keys is scratch space for the
// sorted keys; it returns both for reuse.
func (st *state) appendMarshal(b []byte, keys []string) ([]byte, []string) {
	if cap(b)-len(b) < 64 {
		size := 64
		for k, s := range st.series {
			size += len(k) + 48
			if s.h != nil {
				size += 16 * len(s.h.bounds)
			}
		}
		b = slices.Grow(b, size)
	}
	b = append(b, stateMagic...)
	b = append(b, stateVersion)
	flags := byte(0)
	if st.primed {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, st.lastTS)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(st.processStart))
	b = binary.AppendVarint(b, st.lastSweep)
	b = binary.AppendUvarint(b, uint64(len(st.series)))
	// Sorted, so the same state always saves to the same bytes.
	keys = keys[:0]
	for k := range st.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s := st.series[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = append(b, byte(s.kind))
		b = binary.AppendVarint(b, s.seen)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.count))
		var h histState
		if s.h != nil {
			h = *s.h
		}
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.sum))
		b = binary.AppendUvarint(b, uint64(len(h.bounds)))
		for i := range h.bounds {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.bounds[i]))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.buckets[i]))
		}
	}
	return b, keys
}

var errStateCorrupt = errors.New("corrupt converter state")

type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", errStateCorrupt, what)
	}
	r.b = nil
}

func (r *stateReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) float(what string) float64 {
	if len(r.b) < 8 {
		r.fail(what)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *stateReader) byte1(what string) byte {
	if len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func unmarshalState(b []byte) (*state, error) {
	if len(b) < len(stateMagic)+1 || string(b[:len(stateMagic)]) != stateMagic {
		return nil, fmt.Errorf("%w: no header", errStateCorrupt)
	}
	if v := b[len(stateMagic)]; v != stateVersion {
		return nil, fmt.Errorf("%w: unknown version %d", errStateCorrupt, v)
	}
	r := &stateReader{b: b[len(stateMagic)+1:]}
	st := newState()
	st.primed = r.byte1("flags")&1 != 0
	st.lastTS = r.varint("timestamp")
	st.processStart = r.float("process start")
	st.lastSweep = r.varint("sweep time")
	n := r.uvarint("series count")
	// Each series takes at least 1+1+1+8+8+1 bytes.
	if n > uint64(len(r.b))/20 {
		r.fail("series count")
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		kl := r.uvarint("key length")
		if kl == 0 || kl > uint64(len(r.b)) {
			r.fail("key length")
			break
		}
		s := &series{key: string(r.b[:kl])}
		r.b = r.b[kl:]
		s.kind = FamilyType(r.byte1("kind"))
		s.seen = r.varint("seen")
		s.count = r.float("count")
		h := &histState{sum: r.float("sum")}
		nb := r.uvarint("bucket count")
		if nb > uint64(len(r.b))/16 {
			r.fail("bucket count")
			break
		}
		if nb > 0 {
			h.bounds = make([]float64, nb)
			h.buckets = make([]float64, nb)
			for j := range h.bounds {
				h.bounds[j] = r.float("bound")
				h.buckets[j] = r.float("bucket")
			}
		}
		if s.kind > Summary {
			r.fail("kind")
			break
		}
		if s.kind == Histogram || s.kind == Summary {
			s.h = h
		}
		if _, dup := st.series[s.key]; dup {
			r.fail("duplicate series")
			break
		}
		st.series[s.key] = s
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return st, nil
}
