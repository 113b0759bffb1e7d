package collector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
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
	// sorted is series ordered by key for saving, nil after a series was
	// added or removed: a page's set of series rarely changes, and sorting
	// it for every save would cost more than the rest of the save.
	sorted []*series
}

// series is one counter, histogram or summary series (a histogram's labels
// without le; a summary's without quantile). Counters are most of a page,
// so what only histograms and summaries need hangs off h.
//
// Fields are ordered so that the struct takes 48 bytes, not 64: there is
// one per series, about 130,000 for a Traefik with 500 services.
type series struct {
	key   string
	seen  int64   // unix ns of the last scrape that had it
	count float64 // counter value; histogram/summary _count, as last committed
	h     *histState
	idx   int32 // position in the converter's scrape order; not saved
	kind  FamilyType
	dead  bool // expired: no longer in the map
}

// histState is the rest of a histogram or summary series.
type histState struct {
	// Committed values from the previous scrape.
	sum float64 // _sum
	// bounds are the histogram's upper bounds, ascending. Never written in
	// place: the series of a family share one slice (see layoutChanged).
	bounds  []float64
	buckets []float64 // cumulative bucket counts, same length as bounds

	// The scrape being converted; not saved.
	gen      uint64
	cur      scrapeValues
	pending  bool // queued for writing at the end of its family
	layoutOK bool // the buckets so far matched bounds in order
}

// scrapeValues collects a histogram or summary series' samples in one scrape.
// What is rarely needed hangs off x, so that a histogram's state stays
// small.
type scrapeValues struct {
	count, sum       float64
	buckets          []float64 // when layoutOK, indexed like histState.bounds
	x                *scrapeExtra
	n                int32 // buckets seen
	hasCount, hasSum bool
}

// scrapeExtra is the part of scrapeValues that a histogram whose buckets
// are those of its previous scrape never needs.
type scrapeExtra struct {
	bounds    []float64 // when !layoutOK, the new layout
	quantiles []quantileValue
}

// extra returns c.x, allocating it on first use.
func (c *scrapeValues) extra() *scrapeExtra {
	if c.x == nil {
		c.x = &scrapeExtra{}
	}
	return c.x
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
	if c.x != nil {
		c.x.quantiles = c.x.quantiles[:0]
		c.x.bounds = c.x.bounds[:0]
	}
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
		if int(c.n) < len(h.bounds) && h.bounds[c.n] == le {
			c.buckets[c.n] = v
			c.n++
			return
		}
		// The page's buckets differ from the last scrape's: keep the
		// prefix that matched and collect the new layout.
		h.layoutOK = false
		x := c.extra()
		x.bounds = append(x.bounds[:0], h.bounds[:c.n]...)
		c.buckets = c.buckets[:c.n]
	}
	c.x.bounds = append(c.x.bounds, le)
	c.buckets = append(c.buckets, v)
	c.n++
}

// layoutChanged reports whether this scrape's buckets differ from the
// previous scrape's, and if so makes the new layout current (sorted) with
// zero previous counts. When the new bounds equal shared (those of the
// series converted before, as every series of a family has the same
// buckets) the series takes that slice instead of a copy. A histogram's
// extra is dropped here: only a layout that keeps changing keeps paying
// for it.
func (h *histState) layoutChanged(shared []float64) bool {
	c := &h.cur
	if h.layoutOK && int(c.n) == len(h.bounds) {
		return false
	}
	x := c.extra()
	if h.layoutOK { // fewer buckets than before
		x.bounds = append(x.bounds[:0], h.bounds[:c.n]...)
		c.buckets = c.buckets[:c.n]
	}
	sort.Sort(byBound{x.bounds, c.buckets})
	if slices.Equal(x.bounds, shared) && len(shared) > 0 {
		h.bounds = shared
	} else {
		h.bounds = slices.Clone(x.bounds)
	}
	h.buckets = append(h.buckets[:0], make([]float64, len(x.bounds))...)
	h.layoutOK = true
	if len(x.quantiles) == 0 {
		c.x = nil
	}
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
			st.sorted = nil
			n++
		}
	}
	return n
}

// The saved form: "TIBS", a version byte, then uvarints, varints, values
// and float64 bits (little endian). The series are sorted by key, and each
// key is stored as the length it shares with the previous one and the rest;
// a value that is a whole number (counts, as most are) is a uvarint of
// twice it, any other the byte 1 and its float64 bits; last-seen times are
// their distance to the newest; a histogram with the bounds of the previous
// one does not repeat them. On Traefik's pages this is about 31 bytes a
// series, a sixth of storing every key and float in full, and a quarter of
// the size of the scrape's lines (BenchmarkConverterState). Sizes are
// checked against what is left before anything is allocated, so a damaged
// state is an error, not a panic or a huge allocation.
const (
	stateMagic   = "TIBS"
	stateVersion = 2
)

// appendMarshal appends the saved form to b.
func (st *state) appendMarshal(b []byte) []byte {
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
	// Sorted, so that keys share prefixes and the same state always saves
	// to the same bytes.
	if st.sorted == nil {
		st.sorted = make([]*series, 0, len(st.series))
		for _, s := range st.series {
			st.sorted = append(st.sorted, s)
		}
		slices.SortFunc(st.sorted, func(a, b *series) int { return strings.Compare(a.key, b.key) })
	}
	var newest int64
	for i, s := range st.sorted {
		if i == 0 || s.seen > newest {
			newest = s.seen
		}
	}
	b = binary.AppendVarint(b, newest)
	b = binary.AppendUvarint(b, uint64(len(st.sorted)))
	prev := ""
	var prevBounds []float64
	for _, s := range st.sorted {
		k := s.key
		n := 0
		for n < len(k) && n < len(prev) && k[n] == prev[n] {
			n++
		}
		b = binary.AppendUvarint(b, uint64(n))
		b = binary.AppendUvarint(b, uint64(len(k)-n))
		b = append(b, k[n:]...)
		prev = k
		b = append(b, byte(s.kind))
		b = binary.AppendUvarint(b, uint64(newest-s.seen))
		b = appendValue(b, s.count)
		if s.kind != Histogram && s.kind != Summary {
			continue
		}
		var h histState
		if s.h != nil {
			h = *s.h
		}
		b = appendValue(b, h.sum)
		same := uint64(0)
		if len(h.bounds) > 0 && slices.Equal(h.bounds, prevBounds) {
			same = 1
		}
		b = binary.AppendUvarint(b, uint64(len(h.bounds))<<1|same)
		for i := range h.bounds {
			if same == 0 {
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.bounds[i]))
			}
			b = appendValue(b, h.buckets[i])
		}
		if len(h.bounds) > 0 {
			prevBounds = h.bounds
		}
	}
	return b
}

// appendValue appends v as a uvarint of 2v when it is a whole number below
// 2^62 (-0 becomes 0), else as the byte 1 and its float64 bits.
func appendValue(b []byte, v float64) []byte {
	if v >= 0 && v < 1<<62 && v == math.Trunc(v) {
		return binary.AppendUvarint(b, uint64(v)<<1)
	}
	b = append(b, 1)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
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

// value reads what appendValue wrote. The converter never keeps a NaN or
// ±Inf value (such samples are skipped), and a difference with one would
// write NaN, so a state holding one is damaged.
func (r *stateReader) value(what string) float64 {
	u := r.uvarint(what)
	switch {
	case u&1 == 0:
		return float64(u >> 1)
	case u == 1:
		if v := r.float(what); !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v
		}
	}
	r.fail(what)
	return 0
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
	if math.IsNaN(st.processStart) || math.IsInf(st.processStart, 0) {
		r.fail("process start")
	}
	st.lastSweep = r.varint("sweep time")
	newest := r.varint("newest seen")
	n := r.uvarint("series count")
	// Each series takes at least 1+1+1+1+1+1 bytes.
	if n > uint64(len(r.b))/6 {
		r.fail("series count")
	}
	prev := ""
	var prevBounds []float64
	for i := uint64(0); i < n && r.err == nil; i++ {
		shared := r.uvarint("key prefix")
		rest := r.uvarint("key length")
		if shared > uint64(len(prev)) || rest > uint64(len(r.b)) || shared+rest == 0 {
			r.fail("key length")
			break
		}
		key := prev[:shared] + string(r.b[:rest])
		r.b = r.b[rest:]
		// Sorted and unique, as saved; this also rules out duplicates.
		if i > 0 && key <= prev {
			r.fail("key order")
			break
		}
		prev = key
		s := &series{key: key}
		s.kind = FamilyType(r.byte1("kind"))
		if s.kind > Summary {
			r.fail("kind")
			break
		}
		age := r.uvarint("seen")
		if age > math.MaxInt64 {
			r.fail("seen")
			break
		}
		s.seen = newest - int64(age)
		s.count = r.value("count")
		if s.kind == Histogram || s.kind == Summary {
			h := &histState{sum: r.value("sum")}
			nb := r.uvarint("bucket count")
			same := nb&1 == 1
			nb >>= 1
			// A bucket takes at least one byte, and eight more for its bound
			// unless it repeats the previous histogram's.
			if nb > uint64(len(r.b)) || (same && nb != uint64(len(prevBounds))) || (same && nb == 0) {
				r.fail("bucket count")
				break
			}
			if nb > 0 {
				if same {
					h.bounds = prevBounds // shared, as layoutChanged shares them
				} else {
					h.bounds = make([]float64, nb)
				}
				h.buckets = make([]float64, nb)
				for j := range h.buckets {
					if !same {
						if h.bounds[j] = r.float("bound"); math.IsNaN(h.bounds[j]) {
							r.fail("bound")
						}
					}
					h.buckets[j] = r.value("bucket")
				}
				prevBounds = h.bounds
			}
			s.h = h
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
