package collector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"sort"
	"unsafe"
)

// state is what the traefik schema remembers about one target between
// scrapes: the previous cumulative values of every counter, histogram and
// summary series, so that it can write increases. It is plain data so that
// it can be saved next to a durable queue and restored after a restart.
//
// A delta schema has to remember every series it has seen, so this is the
// one part of the bridge whose memory grows with the page; it is laid out to
// cost as little as possible per series (a counter: its key, about 45
// bytes on Traefik's pages, a 32-byte slot and 8 bytes of table; a histogram
// 24 bytes more and its bucket counts; 110 bytes a series on average,
// BenchmarkConverterMemory) and traefik.max_series bounds it. Nothing in it is a pointer but the
// handful of names and layouts, so the garbage collector does not walk it.
//
// A series is identified by its key: the index of its measurement in names,
// then for each scraped label, in name order, the index of the label's name,
// the length of its value and the value (uvarints and raw bytes). The static
// tags are the same for every series of a target and are left out; the
// saved state's key in the queue covers them.
type state struct {
	// primed is set after the first complete scrape: that one is the
	// baseline and writes no counter.
	primed bool
	// lastTS is the timestamp (in precision units) of the last scrape
	// written, so that the next one can be made strictly greater.
	lastTS int64
	// processStart is the target's process_start_time_seconds; 0 if unknown.
	processStart float64
	// lastSweep is when (unix ns of a scrape) series were last expired.
	lastSweep int64

	// names are the measurement and label names keys refer to by index.
	names   []string
	nameIdx map[string]uint32

	// keys holds every series key end to end; slots are the series in the
	// order they were first met, which is the page's order.
	keys  []byte
	slots []slot
	// hists are the histogram and summary parts of slots; vals the
	// previous bucket counts of histograms, a run of len(layout) each.
	hists []histSlot
	vals  []float64
	// layouts are the distinct bucket bounds (ascending) histograms have.
	layouts   [][]float64
	layoutIdx map[string]int32

	// table finds a slot by key: open addressing with linear probing over
	// slot index + 1 (0 is empty), at most half full.
	table []int32
	seed  maphash.Seed

	// garbage counts the bytes of keys and values no live series uses,
	// left by forgotten series and histograms whose layout changed; the
	// state is compacted when it is most of it.
	garbage int
}

// slot is one counter, histogram or summary series.
type slot struct {
	off   uint32  // key is keys[off : off+n]
	n     uint32  //
	seen  int64   // unix ns of the last scrape that had it
	count float64 // counter value; histogram or summary _count, as last committed
	hist  int32   // index in hists; -1 for a counter
	kind  FamilyType
}

// histSlot is the rest of a histogram or summary series.
type histSlot struct {
	sum    float64 // _sum, as last committed
	off    uint32  // bucket counts are vals[off : off+len(layouts[layout])]
	layout int32   // index in layouts; -1 when it has no buckets
	// gen and pend tie the series to its entry in the converter's pending
	// list while its family is being converted.
	gen  uint32
	pend int32
}

func newState() *state {
	return &state{
		nameIdx:   make(map[string]uint32),
		layoutIdx: make(map[string]int32),
		seed:      maphash.MakeSeed(),
	}
}

// key returns the key of slot i.
func (st *state) key(i int32) []byte {
	s := &st.slots[i]
	return st.keys[s.off : s.off+s.n : s.off+s.n]
}

// intern returns the index of name, adding it if new.
func (st *state) intern(name []byte) uint32 {
	if id, ok := st.nameIdx[string(name)]; ok { // no copy of name
		return id
	}
	return st.internString(string(name))
}

// internString is intern for a string.
func (st *state) internString(name string) uint32 {
	if id, ok := st.nameIdx[name]; ok {
		return id
	}
	id := uint32(len(st.names))
	st.names = append(st.names, name)
	st.nameIdx[name] = id
	return id
}

// find returns the slot of key, or -1.
func (st *state) find(key []byte) int32 {
	if len(st.table) == 0 {
		return -1
	}
	mask := uint64(len(st.table) - 1)
	for i := maphash.Bytes(st.seed, key) & mask; ; i = (i + 1) & mask {
		e := st.table[i]
		if e == 0 {
			return -1
		}
		if string(st.key(e-1)) == string(key) {
			return e - 1
		}
	}
}

// add makes a new series of kind with key, which must not be there.
func (st *state) add(key []byte, kind FamilyType) int32 {
	if uint64(len(st.keys))+uint64(len(key)) > math.MaxUint32 || len(st.slots) >= math.MaxInt32/2 {
		// Far beyond any max_series: 4 GiB of keys.
		return -1
	}
	id := int32(len(st.slots))
	st.slots = append(st.slots, slot{off: uint32(len(st.keys)), n: uint32(len(key)), hist: -1, kind: kind})
	st.keys = append(st.keys, key...)
	st.setKind(id, kind)
	if 2*len(st.slots) > len(st.table) {
		st.rehash(max(64, 2*len(st.table)))
	} else {
		st.place(id)
	}
	return id
}

// setKind starts slot i afresh as a series of kind.
func (st *state) setKind(i int32, kind FamilyType) {
	s := &st.slots[i]
	s.kind, s.count = kind, 0
	if kind != Histogram && kind != Summary {
		if s.hist >= 0 {
			st.dropVals(&st.hists[s.hist])
			st.hists[s.hist] = histSlot{layout: -1} // left unused until compaction
		}
		s.hist = -1
		return
	}
	if s.hist < 0 {
		s.hist = int32(len(st.hists))
		st.hists = append(st.hists, histSlot{layout: -1})
		return
	}
	h := &st.hists[s.hist]
	st.dropVals(h)
	*h = histSlot{layout: -1}
}

func (st *state) dropVals(h *histSlot) {
	if h.layout >= 0 {
		st.garbage += 8 * len(st.layouts[h.layout])
	}
}

// place enters slot i in the table.
func (st *state) place(i int32) {
	mask := uint64(len(st.table) - 1)
	j := maphash.Bytes(st.seed, st.key(i)) & mask
	for st.table[j] != 0 {
		j = (j + 1) & mask
	}
	st.table[j] = i + 1
}

func (st *state) rehash(size int) {
	st.table = make([]int32, size)
	for i := range st.slots {
		st.place(int32(i))
	}
}

// setLayout gives histogram h the bucket bounds les (ascending) and reports
// whether they differ from its previous ones, in which case its previous
// counts are zero.
func (st *state) setLayout(h *histSlot, les []float64) bool {
	var old []float64
	if h.layout >= 0 {
		old = st.layouts[h.layout]
	}
	if slices.Equal(old, les) {
		return false
	}
	st.dropVals(h)
	if len(les) == 0 {
		h.layout = -1
		return true
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&les[0])), 8*len(les))
	id, ok := st.layoutIdx[string(raw)]
	if !ok {
		id = int32(len(st.layouts))
		cp := slices.Clone(les)
		st.layouts = append(st.layouts, cp)
		st.layoutIdx[string(raw)] = id
	}
	h.layout = id
	if len(old) == len(les) {
		st.garbage -= 8 * len(les) // the run is reused
		clear(st.vals[h.off : int(h.off)+len(les)])
		return true
	}
	h.off = uint32(len(st.vals))
	st.vals = append(st.vals, make([]float64, len(les))...)
	return true
}

// histVals returns the previous bucket counts of h.
func (st *state) histVals(h *histSlot) (bounds, counts []float64) {
	if h.layout < 0 {
		return nil, nil
	}
	bounds = st.layouts[h.layout]
	return bounds, st.vals[h.off : int(h.off)+len(bounds)]
}

// expire forgets series not seen since before cutoff (unix ns), and
// compacts the state when most of it is garbage. It reports whether it
// compacted, which changes slot indices.
func (st *state) expire(cutoff int64) bool {
	stale := slices.ContainsFunc(st.slots, func(s slot) bool { return s.seen < cutoff })
	if !stale && !st.wasteful() {
		return false
	}
	st.compact(cutoff)
	return true
}

// wasteful reports whether most of the keys and values are garbage.
func (st *state) wasteful() bool {
	return st.garbage >= 1<<16 && 2*st.garbage >= len(st.keys)+8*len(st.vals)
}

// compact rebuilds the state without the series not seen since cutoff, the
// garbage, and the names and layouts no series uses.
func (st *state) compact(cutoff int64) {
	old := *st
	*st = state{primed: old.primed, lastTS: old.lastTS, processStart: old.processStart, lastSweep: old.lastSweep}
	fresh := newState()
	st.nameIdx, st.layoutIdx, st.seed = fresh.nameIdx, fresh.layoutIdx, fresh.seed
	live, keyBytes, valCount := 0, 0, 0
	for i := range old.slots {
		s := &old.slots[i]
		if s.seen < cutoff {
			continue
		}
		live++
		keyBytes += int(s.n)
		if s.hist >= 0 {
			if h := &old.hists[s.hist]; h.layout >= 0 {
				valCount += len(old.layouts[h.layout])
			}
		}
	}
	st.keys = make([]byte, 0, keyBytes)
	st.slots = make([]slot, 0, live)
	st.vals = make([]float64, 0, valCount)
	var buf []byte
	for i := range old.slots {
		s := old.slots[i]
		if s.seen < cutoff {
			continue
		}
		// Renumber the names in the key.
		buf = buf[:0]
		ok := walkKey(old.key(int32(i)), func(id uint32, value []byte, meas bool) {
			buf = binary.AppendUvarint(buf, uint64(st.internString(old.names[id])))
			if !meas {
				buf = binary.AppendUvarint(buf, uint64(len(value)))
				buf = append(buf, value...)
			}
		}, len(old.names))
		if !ok {
			continue // cannot happen: keys are checked when made and loaded
		}
		s.off, s.n = uint32(len(st.keys)), uint32(len(buf))
		st.keys = append(st.keys, buf...)
		if s.hist >= 0 {
			h := old.hists[s.hist]
			h.gen, h.pend = 0, 0
			if h.layout >= 0 {
				bounds, counts := old.histVals(&old.hists[s.hist])
				h.layout = -1
				st.setLayout(&h, bounds)
				copy(st.vals[h.off:], counts)
			}
			s.hist = int32(len(st.hists))
			st.hists = append(st.hists, h)
		}
		st.slots = append(st.slots, s)
	}
	st.garbage = 0
	size := 64
	for size < 2*len(st.slots) {
		size *= 2
	}
	st.rehash(size)
}

// walkKey calls fn with the measurement of key (meas true, value nil) and
// then each label's name and value, and reports whether key is well formed
// with every name below names.
func walkKey(key []byte, fn func(id uint32, value []byte, meas bool), names int) bool {
	id, n := binary.Uvarint(key)
	if n <= 0 || id >= uint64(names) {
		return false
	}
	fn(uint32(id), nil, true)
	key = key[n:]
	for len(key) > 0 {
		id, n = binary.Uvarint(key)
		if n <= 0 || id >= uint64(names) {
			return false
		}
		key = key[n:]
		l, n := binary.Uvarint(key)
		if n <= 0 || l > uint64(len(key)-n) {
			return false
		}
		fn(uint32(id), key[n:n+int(l)], false)
		key = key[n+int(l):]
	}
	return true
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

// The saved form: "TIBS", a version byte, then uvarints, varints, values
// and float64 bits (little endian): the header, the names, the bucket
// layouts, and the series in slot order (the page's), each key stored as
// the length it shares with the previous one and the rest. A value that is
// a whole number (counts, as most are) is a uvarint of twice it, any other
// the byte 1 and its float64 bits; last-seen times are their distance to
// the newest. On Traefik's pages this is about 25 bytes a series. Sizes are
// checked against what is left before anything is allocated, so a damaged
// state is an error, not a panic or a huge allocation. Version 2 (keys
// holding the whole line-protocol series) is not read: a bridge upgraded
// from it starts with a baseline.
const (
	stateMagic   = "TIBS"
	stateVersion = 3
)

// appendMarshal appends the saved form to b.
func (st *state) appendMarshal(b []byte) []byte {
	return st.marshal(b, nil)
}

// marshalPiece is how much of the saved form marshal builds up before it
// hands it to its flush function.
const marshalPiece = 32 << 10

// marshal appends the saved form to b. With flush, it hands b to flush each
// time b holds marshalPiece bytes or more and goes on at b[:0], so that only
// a piece is held at a time; what it returns is the rest, not flushed.
func (st *state) marshal(b []byte, flush func([]byte)) []byte {
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
	var newest int64
	for i := range st.slots {
		if i == 0 || st.slots[i].seen > newest {
			newest = st.slots[i].seen
		}
	}
	b = binary.AppendVarint(b, newest)
	b = binary.AppendUvarint(b, uint64(len(st.names)))
	for _, n := range st.names {
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
	}
	b = binary.AppendUvarint(b, uint64(len(st.layouts)))
	for _, l := range st.layouts {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, v := range l {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(st.slots)))
	var prev []byte
	for i := range st.slots {
		s := &st.slots[i]
		k := st.key(int32(i))
		n := commonPrefix(k, prev)
		b = binary.AppendUvarint(b, uint64(n))
		b = binary.AppendUvarint(b, uint64(len(k)-n))
		b = append(b, k[n:]...)
		prev = k
		if flush != nil && len(b) >= marshalPiece {
			flush(b)
			b = b[:0]
		}
		b = append(b, byte(s.kind))
		b = binary.AppendUvarint(b, uint64(newest-s.seen))
		b = appendValue(b, s.count)
		if s.hist < 0 {
			continue
		}
		h := &st.hists[s.hist]
		b = appendValue(b, h.sum)
		b = binary.AppendUvarint(b, uint64(h.layout+1))
		_, counts := st.histVals(h)
		for _, v := range counts {
			b = appendValue(b, v)
		}
	}
	return b
}

// marshalSize is the length of what marshal makes, counted without making
// it: a grouped scrape's state goes to the disk queue a piece at a time,
// its length first. It follows marshal step by step;
// TestStateMarshalSize holds the two together.
func (st *state) marshalSize() int {
	n := len(stateMagic) + 2 // version, flags
	n += varintLen(st.lastTS) + 8 + varintLen(st.lastSweep)
	var newest int64
	for i := range st.slots {
		if i == 0 || st.slots[i].seen > newest {
			newest = st.slots[i].seen
		}
	}
	n += varintLen(newest)
	n += uvarintLen(uint64(len(st.names)))
	for _, name := range st.names {
		n += uvarintLen(uint64(len(name))) + len(name)
	}
	n += uvarintLen(uint64(len(st.layouts)))
	for _, l := range st.layouts {
		n += uvarintLen(uint64(len(l))) + 8*len(l)
	}
	n += uvarintLen(uint64(len(st.slots)))
	var prev []byte
	for i := range st.slots {
		s := &st.slots[i]
		k := st.key(int32(i))
		p := commonPrefix(k, prev)
		n += uvarintLen(uint64(p)) + uvarintLen(uint64(len(k)-p)) + len(k) - p
		prev = k
		n += 1 + uvarintLen(uint64(newest-s.seen)) + valueLen(s.count)
		if s.hist < 0 {
			continue
		}
		h := &st.hists[s.hist]
		n += valueLen(h.sum) + uvarintLen(uint64(h.layout+1))
		_, counts := st.histVals(h)
		for _, v := range counts {
			n += valueLen(v)
		}
	}
	return n
}

// commonPrefix is the length of the longest common prefix of a and b,
// compared eight bytes at a time (a state's keys share about half their
// bytes with the key before).
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// uvarintLen is the length of binary.AppendUvarint's encoding of v.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// varintLen is the length of binary.AppendVarint's encoding of v.
func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

// valueLen is the length of appendValue's encoding of v.
func valueLen(v float64) int {
	if v >= 0 && v < 1<<62 && v == math.Trunc(v) {
		return uvarintLen(uint64(v) << 1)
	}
	return 9
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

// bytes reads n bytes, n being checked against what is left.
func (r *stateReader) bytes(n uint64, what string) []byte {
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
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

	// Names: each takes at least one byte.
	nn := r.uvarint("name count")
	if nn > uint64(len(r.b)) {
		r.fail("name count")
	}
	for i := uint64(0); i < nn && r.err == nil; i++ {
		name := r.bytes(r.uvarint("name length"), "name")
		if r.err != nil {
			break
		}
		if _, dup := st.nameIdx[string(name)]; dup {
			r.fail("name")
			break
		}
		st.intern(name)
	}

	// Layouts: each takes at least nine bytes.
	nl := r.uvarint("layout count")
	if nl > uint64(len(r.b))/9 {
		r.fail("layout count")
	}
	for i := uint64(0); i < nl && r.err == nil; i++ {
		n := r.uvarint("layout length")
		if n == 0 || n > uint64(len(r.b))/8 {
			r.fail("layout length")
			break
		}
		l := make([]float64, n)
		for j := range l {
			if l[j] = r.float("bound"); math.IsNaN(l[j]) || j > 0 && l[j] < l[j-1] {
				r.fail("bound")
			}
		}
		raw := unsafe.Slice((*byte)(unsafe.Pointer(&l[0])), 8*len(l))
		if _, dup := st.layoutIdx[string(raw)]; dup {
			r.fail("layout")
			break
		}
		st.layoutIdx[string(raw)] = int32(len(st.layouts))
		st.layouts = append(st.layouts, l)
	}

	// Series: each takes at least 1+1+1+1+1 bytes.
	n := r.uvarint("series count")
	if n > uint64(len(r.b))/5 {
		r.fail("series count")
	}
	var prev, key []byte
	names := len(st.names)
	for i := uint64(0); i < n && r.err == nil; i++ {
		shared := r.uvarint("key prefix")
		rest := r.uvarint("key length")
		if shared > uint64(len(prev)) || rest > uint64(len(r.b)) || shared+rest == 0 {
			r.fail("key length")
			break
		}
		key = append(append(key[:0], prev[:shared]...), r.b[:rest]...)
		r.b = r.b[rest:]
		if !walkKey(key, func(uint32, []byte, bool) {}, names) || st.find(key) >= 0 {
			r.fail("key")
			break
		}
		kind := FamilyType(r.byte1("kind"))
		if kind > Summary {
			r.fail("kind")
			break
		}
		id := st.add(key, kind)
		if id < 0 {
			r.fail("key")
			break
		}
		prev = st.key(id)
		s := &st.slots[id]
		age := r.uvarint("seen")
		if age > math.MaxInt64 {
			r.fail("seen")
			break
		}
		s.seen = newest - int64(age)
		s.count = r.value("count")
		if s.hist < 0 {
			continue
		}
		h := &st.hists[s.hist]
		h.sum = r.value("sum")
		l := r.uvarint("layout")
		if l > uint64(len(st.layouts)) || l > 0 && kind != Histogram {
			r.fail("layout")
			break
		}
		if l > 0 {
			st.setLayout(h, st.layouts[l-1])
			_, counts := st.histVals(h)
			for j := range counts {
				counts[j] = r.value("bucket")
			}
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return st, nil
}
