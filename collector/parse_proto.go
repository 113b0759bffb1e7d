package collector

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// ProtoParser reads the delimited protobuf exposition format
// (application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
// encoding=delimited): a sequence of MetricFamily messages, each preceded by
// its length as a varint. It yields the samples the text Parser yields for
// the page expfmt's text encoder writes from the same families, in the same
// order: a histogram's buckets with an le label (the +Inf bucket added when
// the page leaves it out), then _sum and _count; a summary's quantiles, then
// _sum and _count. A gauge histogram is reported as a Histogram, as in text.
// Created timestamps, exemplars and native-histogram buckets are ignored; a
// histogram with native buckets only yields its +Inf bucket, _sum and _count,
// as its text does. Each MetricFamily is a family of its own: where the
// text parser would refuse a family name given twice, or read a family
// named like another's suffixed samples (h_sum beside histogram h) as part of
// it, this parser keeps them apart. client_golang's registry, which builds
// Traefik's page, refuses both. A Metric without the value of its family's
// type, which the text encoder refuses, reads as 0, as protobuf's defaults
// do; a family renamed or retyped after its first Metric is an error.
//
// It walks the wire format with protowire instead of unmarshalling into the
// dto structs, which would allocate for every sample. Like Parser.ResetReader
// it reads through a window of a fixed size: a family can be megabytes (one
// family holds every service), so only one Metric message, small, need be in
// the window at a time. A family whose first Metric comes before its name or
// type, which no encoder writes (fields go in number order), is held whole
// in the window instead, so that every sample gets the final name and type.
//
// Names, label values and bounds are slices of the window or of buffers the
// parser reuses, so a parser that has read a page once reads the next page of
// the same shape without allocating.
//
// A ProtoParser is not safe for concurrent use.
type ProtoParser struct {
	r      io.Reader
	win    []byte
	pos    int   // next unread byte of win
	end    int   // end of what has been read into win
	base   int64 // offset in the stream of win[0]
	eof    bool  // r is spent, or failed
	rerr   error // r's error, returned once the bytes read before it are used
	window int   // size of the window; streamWindow unless a test sets it
	err    error

	// The family being read.
	inFam   bool
	famEnd  int64 // offset in the stream of the end of the family
	name    []byte
	hasName bool
	typ     uint64
	hasType bool
	started bool // its samples are being yielded: name and type are final
	held    bool // the rest of the family is in the window
	names   []byte
	famName []byte // famName, bucketName, sumName and countName are slices of names
	bucket  []byte
	sum     []byte
	count   []byte
	ftype   FamilyType
	kind    protowire.Number // the Metric field that holds this family's values

	// The Metric being yielded: sample next of total.
	labels     []Label
	nl         int // labels of the metric; an le or quantile label goes after them
	items      []protoItem
	next       int
	total      int
	value      float64
	sumV       float64
	countV     float64
	countF     float64
	needInf    bool
	ts         int64
	hasTs      bool
	le, quant  []byte
	sample     Sample
	bounds     []boundText
	boundsNext int    // where the next bound is likely to be: series repeat their bounds in order
	series     uint64 // the Sample.Series of the Metric being yielded
}

// protoItem is a bucket (bound: upper bound) or a quantile.
type protoItem struct {
	bound, value float64
}

// boundText is a bucket bound or quantile as the text encoder writes it.
type boundText struct {
	bits uint64
	text []byte
}

// Field numbers of io.prometheus.client's metrics.proto.
const (
	fFamName   protowire.Number = 1
	fFamHelp   protowire.Number = 2
	fFamType   protowire.Number = 3
	fFamMetric protowire.Number = 4
	fFamUnit   protowire.Number = 5

	fMetLabel     protowire.Number = 1
	fMetGauge     protowire.Number = 2
	fMetCounter   protowire.Number = 3
	fMetSummary   protowire.Number = 4
	fMetUntyped   protowire.Number = 5
	fMetTimestamp protowire.Number = 6
	fMetHistogram protowire.Number = 7
)

// NewProtoParser returns a parser with no input; call ResetReader before Next.
func NewProtoParser() *ProtoParser {
	return &ProtoParser{eof: true, le: []byte("le"), quant: []byte("quantile")}
}

// ResetReader starts parsing what r yields, a window at a time. A Metric
// message larger than the window grows it for the rest of this page, as a
// long line does for Parser; the window grows only as bytes arrive, so r
// bounds what is allocated. An error of r ends the page: Next returns false
// and Err returns that error, after the samples of the Metrics read whole
// before it.
func (p *ProtoParser) ResetReader(r io.Reader) {
	n := p.window
	if n <= 0 {
		n = streamWindow
	}
	if len(p.win) != n {
		p.win = make([]byte, n)
	}
	p.r, p.pos, p.end, p.base, p.eof, p.err, p.rerr = r, 0, 0, 0, false, nil, nil
	p.inFam, p.next, p.total = false, 0, 0
}

// Sample returns the current sample. It and every slice in it are valid until
// the next call to Next or ResetReader.
func (p *ProtoParser) Sample() *Sample { return &p.sample }

// Err returns the error that stopped Next, or nil at a clean end: a
// *ParseError (with an Offset), or the reader's error.
func (p *ProtoParser) Err() error { return p.err }

// Next advances to the next sample. It returns false at the end of the page
// or on the first error, which Err then returns.
func (p *ProtoParser) Next() bool {
	if p.err != nil {
		return false
	}
	for p.next >= p.total {
		if !p.advance() {
			return false
		}
	}
	p.emit(p.next)
	p.next++
	if p.sample.Value == 0 {
		p.sample.Value = 0 // -0, which expfmt writes as 0
	}
	return true
}

func (p *ProtoParser) off() int64 { return p.base + int64(p.pos) }

func (p *ProtoParser) failAt(off int64, format string, args ...any) bool {
	p.err = &ParseError{Offset: off, Msg: fmt.Sprintf(format, args...)}
	return false
}

// avail makes n bytes available at win[pos:] if the stream has them and
// returns how many there are, n or fewer at the end of the stream or on an
// error of the reader. That error waits in rerr: the Metrics read whole
// before it are still yielded, and short tells it from a truncated page.
func (p *ProtoParser) avail(n int) int {
	for p.end-p.pos < n && !p.eof {
		if len(p.win)-p.pos < n || p.end == len(p.win) {
			if p.pos > 0 {
				copy(p.win, p.win[p.pos:p.end])
				p.base += int64(p.pos)
				p.end -= p.pos
				p.pos = 0
			} else if p.end == len(p.win) {
				// Full and still short: grow, only as bytes arrive.
				w := make([]byte, 2*len(p.win))
				copy(w, p.win[:p.end])
				p.win = w
			}
		}
		m, err := p.r.Read(p.win[p.end:])
		p.end += m
		if err != nil {
			p.eof = true
			if err != io.EOF {
				p.rerr = err
			}
		}
	}
	return min(n, p.end-p.pos)
}

// short ends the page where bytes are missing: with the reader's error if
// it failed, else with a *ParseError.
func (p *ProtoParser) short(off int64, format string, args ...any) bool {
	if p.rerr != nil {
		p.err = p.rerr
		return false
	}
	return p.failAt(off, format, args...)
}

// need is avail for bytes the message promises: fewer is a truncated page.
func (p *ProtoParser) need(n int64, what string) bool {
	if n > math.MaxInt32 {
		return p.failAt(p.off(), "%s of %d bytes is too large", what, n)
	}
	if p.avail(int(n)) < int(n) {
		return p.short(p.base+int64(p.end), "page ends inside %s", what)
	}
	return true
}

// skip discards n bytes.
func (p *ProtoParser) skip(n int64, what string) bool {
	for n > 0 {
		if p.pos == p.end && p.avail(1) == 0 {
			return p.short(p.off(), "page ends inside %s", what)
		}
		k := min(int64(p.end-p.pos), n)
		p.pos += int(k)
		n -= k
	}
	return true
}

// advance reads up to the next Metric and prepares its samples. It returns
// false at the end of the page or on an error.
func (p *ProtoParser) advance() bool {
	for {
		if !p.inFam {
			if p.avail(1) == 0 {
				p.err = p.rerr // nil at the end of the page
				return false
			}
			n := p.avail(binary10)
			l, k := protowire.ConsumeVarint(p.win[p.pos : p.pos+n])
			if k < 0 {
				if n < binary10 {
					return p.short(p.off(), "invalid length of a metric family")
				}
				return p.failAt(p.off(), "invalid length of a metric family")
			}
			if l > math.MaxInt64/2 {
				return p.failAt(p.off(), "metric family length %d is too large", l)
			}
			p.pos += k
			p.inFam, p.famEnd = true, p.off()+int64(l)
			p.hasName, p.hasType, p.started, p.held = false, false, false, false
			p.name, p.typ = p.name[:0], 0
			continue
		}
		left := p.famEnd - p.off()
		if left == 0 {
			p.inFam = false
			continue
		}
		at := p.off()
		want := int(min(left, 2*binary10))
		n := p.avail(want)
		hdr := p.win[p.pos : p.pos+n]
		if n < want && p.rerr != nil && !headerWhole(hdr) {
			p.err = p.rerr // the reader failed inside the header
			return false
		}
		num, wt, k := protowire.ConsumeTag(hdr)
		if k < 0 {
			return p.short(at, "invalid field in a metric family")
		}
		var l uint64
		switch wt {
		case protowire.BytesType:
			var m int
			l, m = protowire.ConsumeVarint(hdr[k:])
			if m < 0 {
				return p.failAt(at, "invalid length of field %d of a metric family", num)
			}
			k += m
			if l > uint64(left-int64(k)) {
				return p.failAt(at, "field %d is longer than its metric family", num)
			}
		case protowire.VarintType:
			var m int
			l, m = protowire.ConsumeVarint(hdr[k:])
			if m < 0 {
				return p.failAt(at, "invalid varint in field %d of a metric family", num)
			}
			k += m
		case protowire.Fixed32Type, protowire.Fixed64Type:
		default:
			return p.failAt(at, "wire type %d of field %d is not supported", wt, num)
		}
		if want, ok := famWireType(num); ok && wt != want {
			return p.failAt(at, "field %d of a metric family has wire type %d, not %d", num, wt, want)
		}
		p.pos += k
		switch num {
		case fFamName:
			if !p.need(int64(l), "a family name") {
				return false
			}
			v := p.win[p.pos : p.pos+int(l)]
			p.pos += int(l)
			if p.held {
				continue // the prescan took the last name
			}
			if p.started && string(v) != string(p.name) {
				return p.failAt(at, "family %q renamed %q after its metrics", clip(p.name), clip(v))
			}
			p.name, p.hasName = append(p.name[:0], v...), true
		case fFamType:
			if p.held {
				continue
			}
			if p.started && l != p.typ {
				return p.failAt(at, "type of family %q changed after its metrics", clip(p.name))
			}
			p.typ, p.hasType = l, true
		case fFamMetric:
			if !p.started {
				if !p.hasName || !p.hasType {
					if !p.hold(left-int64(k), int(l)) {
						return false
					}
				}
				if !p.startFamily(at) {
					return false
				}
			}
			if !p.need(int64(l), "a metric") {
				return false
			}
			m := p.win[p.pos : p.pos+int(l)]
			moff := p.off()
			p.pos += int(l)
			return p.readMetric(m, moff)
		default:
			switch wt {
			case protowire.BytesType:
				if !p.skip(int64(l), "a metric family") {
					return false
				}
			case protowire.Fixed32Type:
				if !p.skipFixed(4, left-int64(k)) {
					return false
				}
			case protowire.Fixed64Type:
				if !p.skipFixed(8, left-int64(k)) {
					return false
				}
			}
		}
	}
}

// headerWhole reports whether b starts with a whole field header: a tag
// and, for a length-delimited or varint field, its length or value.
func headerWhole(b []byte) bool {
	_, wt, k := protowire.ConsumeTag(b)
	if k < 0 {
		return false
	}
	if wt == protowire.BytesType || wt == protowire.VarintType {
		_, m := protowire.ConsumeVarint(b[k:])
		return m >= 0
	}
	return true
}

// binary10 is the longest varint.
const binary10 = 10

func (p *ProtoParser) skipFixed(n, left int64) bool {
	if n > left {
		return p.failAt(p.off(), "fixed-size field longer than its metric family")
	}
	return p.skip(n, "a metric family")
}

// famWireType is the wire type of a known MetricFamily field.
func famWireType(num protowire.Number) (protowire.Type, bool) {
	switch num {
	case fFamName, fFamHelp, fFamMetric, fFamUnit:
		return protowire.BytesType, true
	case fFamType:
		return protowire.VarintType, true
	}
	return 0, false
}

// hold reads the rest of the family, n bytes from pos, into the window, and
// takes its last name and type, since those apply to every metric. The
// first skip bytes are the Metric being read.
func (p *ProtoParser) hold(n int64, skip int) bool {
	if !p.need(n, "a metric family") {
		return false
	}
	p.held = true
	b := p.win[p.pos : p.pos+int(n)]
	for i := skip; i < len(b); {
		at := p.off() + int64(i)
		num, wt, k := protowire.ConsumeTag(b[i:])
		if k < 0 {
			return p.failAt(at, "invalid field in a metric family")
		}
		if wt == protowire.StartGroupType || wt == protowire.EndGroupType {
			return p.failAt(at, "wire type %d of field %d is not supported", wt, num)
		}
		if want, ok := famWireType(num); ok && wt != want {
			return p.failAt(at, "field %d of a metric family has wire type %d, not %d", num, wt, want)
		}
		i += k
		m := protowire.ConsumeFieldValue(num, wt, b[i:])
		if m < 0 {
			return p.failAt(at, "invalid field %d of a metric family", num)
		}
		switch num {
		case fFamName:
			v, _ := protowire.ConsumeBytes(b[i:])
			p.name, p.hasName = append(p.name[:0], v...), true
		case fFamType:
			p.typ, _ = protowire.ConsumeVarint(b[i:])
			p.hasType = true
		}
		i += m
	}
	return true
}

// startFamily checks the family's name and type, final now, and prepares
// the names of its samples.
func (p *ProtoParser) startFamily(at int64) bool {
	if !p.hasName || len(p.name) == 0 {
		return p.failAt(at, "metric family without a name")
	}
	if !validName(p.name, true) {
		return p.failAt(at, "invalid metric name %q", clip(p.name))
	}
	switch p.typ {
	case 0:
		p.ftype, p.kind = Counter, fMetCounter
	case 1:
		p.ftype, p.kind = Gauge, fMetGauge
	case 2:
		p.ftype, p.kind = Summary, fMetSummary
	case 3:
		p.ftype, p.kind = Untyped, fMetUntyped
	case 4, 5: // a gauge histogram is written as a histogram in text
		p.ftype, p.kind = Histogram, fMetHistogram
	default:
		return p.failAt(at, "unknown metric type %d of family %q", p.typ, clip(p.name))
	}
	n := len(p.name)
	b := append(p.names[:0], p.name...)
	b = append(append(b, p.name...), "_bucket"...)
	b = append(append(b, p.name...), "_sum"...)
	b = append(append(b, p.name...), "_count"...)
	p.names = b
	p.famName = b[:n:n]
	b = b[n:]
	p.bucket, b = b[:n+7:n+7], b[n+7:]
	p.sum, b = b[:n+4:n+4], b[n+4:]
	p.count = b[: n+6 : n+6]
	p.started = true
	return true
}

// readMetric decodes one Metric message at offset off of the stream into
// the labels and values its samples are made of.
func (p *ProtoParser) readMetric(m []byte, off int64) bool {
	p.series++
	p.labels, p.items = p.labels[:0], p.items[:0]
	p.value, p.sumV, p.countV, p.countF = 0, 0, 0, 0
	p.ts, p.hasTs, p.needInf = 0, false, true
	for i := 0; i < len(m); {
		at := off + int64(i)
		num, wt, k := protowire.ConsumeTag(m[i:])
		if k < 0 {
			return p.failAt(at, "invalid field in a metric")
		}
		i += k
		switch num {
		case fMetLabel, fMetGauge, fMetCounter, fMetSummary, fMetUntyped, fMetHistogram:
			if wt != protowire.BytesType {
				return p.failAt(at, "field %d of a metric has wire type %d, not %d", num, wt, protowire.BytesType)
			}
			v, k := protowire.ConsumeBytes(m[i:])
			if k < 0 {
				return p.failAt(at, "field %d is longer than its metric", num)
			}
			voff := off + int64(i+k-len(v))
			i += k
			var ok bool
			switch num {
			case fMetLabel:
				ok = p.readLabel(v, voff)
			case p.kind:
				switch num {
				case fMetSummary:
					ok = p.readSummary(v, voff)
				case fMetHistogram:
					ok = p.readHistogram(v, voff)
				default:
					ok = p.readValue(v, voff)
				}
			default:
				ok = true // values of another type, as expfmt's text encoder ignores them
			}
			if !ok {
				return false
			}
		case fMetTimestamp:
			if wt != protowire.VarintType {
				return p.failAt(at, "field %d of a metric has wire type %d, not %d", num, wt, protowire.VarintType)
			}
			v, k := protowire.ConsumeVarint(m[i:])
			if k < 0 {
				return p.failAt(at, "invalid timestamp")
			}
			i += k
			p.ts, p.hasTs = int64(v), true
		default:
			k := protowire.ConsumeFieldValue(num, wt, m[i:])
			if k < 0 {
				return p.failAt(at, "invalid field %d of a metric", num)
			}
			i += k
		}
	}
	p.nl = len(p.labels)
	for i := 1; i < p.nl; i++ {
		n := p.labels[i].Name
		if (p.ftype == Histogram && string(n) == "le") || (p.ftype == Summary && string(n) == "quantile") {
			continue // as the text parser lets them repeat
		}
		for j := range i {
			if string(n) == string(p.labels[j].Name) {
				return p.failAt(off, "label %q given twice", clip(n))
			}
		}
	}
	p.next = 0
	switch p.ftype {
	case Histogram:
		if p.countF != 0 {
			p.countV = p.countF
		}
		p.total = len(p.items) + 2
		if p.needInf {
			p.total++
		}
	case Summary:
		p.total = len(p.items) + 2
	default:
		p.total = 1
	}
	return true
}

// wireField reads the field at b[i:]: its number and wire type, a varint or
// fixed value in v, a length-delimited value in val, and the index after
// it, or next < 0 when the field is malformed. A plain function, not a
// walker taking a callback: the indirect calls cost a fifth of the parse.
func wireField(b []byte, i int) (num protowire.Number, wt protowire.Type, v uint64, val []byte, next int) {
	num, wt, k := protowire.ConsumeTag(b[i:])
	if k < 0 {
		return 0, 0, 0, nil, -1
	}
	i += k
	switch wt {
	case protowire.VarintType:
		v, k = protowire.ConsumeVarint(b[i:])
	case protowire.Fixed64Type:
		v, k = protowire.ConsumeFixed64(b[i:])
	case protowire.Fixed32Type:
		var v32 uint32
		v32, k = protowire.ConsumeFixed32(b[i:])
		v = uint64(v32)
	case protowire.BytesType:
		val, k = protowire.ConsumeBytes(b[i:])
	default:
		k = protowire.ConsumeFieldValue(num, wt, b[i:])
	}
	if k < 0 {
		return num, wt, 0, nil, -1
	}
	return num, wt, v, val, i + k
}

func (p *ProtoParser) badField(at int64, num protowire.Number, what string) bool {
	return p.failAt(at, "invalid field %d in %s", num, what)
}

// wireType checks the wire type of a known field.
func (p *ProtoParser) wireType(got, want protowire.Type, num protowire.Number, at int64, what string) bool {
	if got != want {
		return p.failAt(at, "field %d of %s has wire type %d, not %d", num, what, got, want)
	}
	return true
}

// double stores the fixed64 field v in dst as a float64, and uvarint the
// varint field v; both fail when the field has another wire type.
func (p *ProtoParser) double(wt protowire.Type, num protowire.Number, v uint64, at int64, what string, dst *float64) bool {
	if !p.wireType(wt, protowire.Fixed64Type, num, at, what) {
		return false
	}
	*dst = math.Float64frombits(v)
	return true
}

func (p *ProtoParser) uvarint(wt protowire.Type, num protowire.Number, v uint64, at int64, what string, dst *float64) bool {
	if !p.wireType(wt, protowire.VarintType, num, at, what) {
		return false
	}
	*dst = float64(v)
	return true
}

func (p *ProtoParser) readLabel(b []byte, off int64) bool {
	var name, value []byte
	// Every encoder writes the name, then the value, each shorter than 128
	// bytes: read that without the general loop.
	if n := len(b); n >= 4 && b[0] == 0x0a && b[1] < 0x80 && int(b[1])+4 <= n {
		nl := int(b[1])
		if b[2+nl] == 0x12 && b[3+nl] < 0x80 && 4+nl+int(b[3+nl]) == n {
			name, value = b[2:2+nl], b[4+nl:]
			return p.addLabel(name, value, off)
		}
	}
	for i := 0; i < len(b); {
		num, wt, _, val, next := wireField(b, i)
		at := off + int64(i)
		if next < 0 {
			return p.badField(at, num, "a label")
		}
		i = next
		switch num {
		case 1, 2:
			if !p.wireType(wt, protowire.BytesType, num, at, "a label") {
				return false
			}
			if num == 1 {
				name = val
			} else {
				value = val
			}
		}
	}
	return p.addLabel(name, value, off)
}

// addLabel checks a label as the text parser would check its text.
func (p *ProtoParser) addLabel(name, value []byte, off int64) bool {
	if !validName(name, false) {
		return p.failAt(off, "invalid label name %q", clip(name))
	}
	if string(name) == "__name__" {
		return p.failAt(off, "label name __name__ is reserved")
	}
	if !utf8.Valid(value) {
		return p.failAt(off, "value of label %q is not valid UTF-8", clip(name))
	}
	if value == nil {
		value = name[:0] // not nil, as the text parser's values
	}
	p.labels = append(p.labels, Label{Name: name, Value: value})
	return true
}

// readValue reads a Gauge, Counter or Untyped message: the value is field 1.
func (p *ProtoParser) readValue(b []byte, off int64) bool {
	for i := 0; i < len(b); {
		num, wt, v, _, next := wireField(b, i)
		at := off + int64(i)
		if next < 0 {
			return p.badField(at, num, "a value")
		}
		i = next
		if num == 1 {
			if !p.double(wt, num, v, at, "a value", &p.value) {
				return false
			}
		}
	}
	return true
}

func (p *ProtoParser) readSummary(b []byte, off int64) bool {
	for i := 0; i < len(b); {
		num, wt, v, val, next := wireField(b, i)
		at := off + int64(i)
		if next < 0 {
			return p.badField(at, num, "a summary")
		}
		i = next
		switch num {
		case 1: // sample_count
			if !p.uvarint(wt, num, v, at, "a summary", &p.countV) {
				return false
			}
		case 2: // sample_sum
			if !p.double(wt, num, v, at, "a summary", &p.sumV) {
				return false
			}
		case 3: // quantile
			if !p.wireType(wt, protowire.BytesType, num, at, "a summary") {
				return false
			}
			var q protoItem
			voff := off + int64(next-len(val))
			for j := 0; j < len(val); {
				num, wt, v, _, next := wireField(val, j)
				at := voff + int64(j)
				if next < 0 {
					return p.badField(at, num, "a quantile")
				}
				j = next
				dst := &q.bound // 1: quantile
				if num == 2 {   // 2: value
					dst = &q.value
				}
				if (num == 1 || num == 2) && !p.double(wt, num, v, at, "a quantile", dst) {
					return false
				}
			}
			p.items = append(p.items, q)
		}
	}
	return true
}

func (p *ProtoParser) readHistogram(b []byte, off int64) bool {
	for i := 0; i < len(b); {
		num, wt, v, val, next := wireField(b, i)
		at := off + int64(i)
		if next < 0 {
			return p.badField(at, num, "a histogram")
		}
		i = next
		switch num {
		case 1: // sample_count
			if !p.uvarint(wt, num, v, at, "a histogram", &p.countV) {
				return false
			}
		case 2: // sample_sum
			if !p.double(wt, num, v, at, "a histogram", &p.sumV) {
				return false
			}
		case 4: // sample_count_float, which wins when not 0
			if !p.double(wt, num, v, at, "a histogram", &p.countF) {
				return false
			}
		case 3: // bucket
			if !p.wireType(wt, protowire.BytesType, num, at, "a histogram") {
				return false
			}
			if !p.readBucket(val, off+int64(next-len(val))) {
				return false
			}
		}
	}
	return true
}

func (p *ProtoParser) readBucket(b []byte, off int64) bool {
	var (
		bk        protoItem
		cnt, cntF float64
	)
	for i := 0; i < len(b); {
		num, wt, v, _, next := wireField(b, i)
		at := off + int64(i)
		if next < 0 {
			return p.badField(at, num, "a bucket")
		}
		i = next
		switch num {
		case 1: // cumulative_count
			if !p.uvarint(wt, num, v, at, "a bucket", &cnt) {
				return false
			}
		case 2: // upper_bound
			if !p.double(wt, num, v, at, "a bucket", &bk.bound) {
				return false
			}
		case 4: // cumulative_count_float, which wins when not 0
			if !p.double(wt, num, v, at, "a bucket", &cntF) {
				return false
			}
		}
	}
	bk.value = cnt
	if cntF != 0 {
		bk.value = cntF
	}
	if math.IsInf(bk.bound, 1) {
		p.needInf = false
	}
	p.items = append(p.items, bk)
	return true
}

// emit makes sample i of the current metric the current sample.
func (p *ProtoParser) emit(i int) {
	s := &p.sample
	s.Family, s.Type = p.famName, p.ftype
	s.TimestampMs, s.HasTimestamp = p.ts, p.hasTs
	s.Series = p.series
	labels := p.labels[:p.nl]
	s.Labels = labels
	switch p.ftype {
	case Histogram, Summary:
		n := len(p.items)
		if i < n || (i == n && p.ftype == Histogram && p.needInf) {
			bound, v := math.Inf(1), p.countV
			if i < n {
				bound, v = p.items[i].bound, p.items[i].value
			}
			name, ln := p.bucket, p.le
			if p.ftype == Summary {
				name, ln = p.famName, p.quant
			}
			p.labels = append(labels, Label{Name: ln, Value: p.boundText(bound)})
			s.Name, s.Labels, s.Value = name, p.labels, v
			return
		}
		if i == p.total-2 {
			s.Name, s.Value = p.sum, p.sumV
		} else {
			s.Name, s.Value = p.count, p.countV
		}
	default:
		s.Name, s.Value = p.famName, p.value
	}
}

// boundText formats a bucket bound or quantile as expfmt's text encoder
// does, once per distinct value: series repeat the same bounds in the same
// order, so the next one is usually where the last one ended.
func (p *ProtoParser) boundText(v float64) []byte {
	bits := math.Float64bits(v)
	if i := p.boundsNext; i < len(p.bounds) && p.bounds[i].bits == bits {
		p.boundsNext++
		return p.bounds[i].text
	}
	for i := range p.bounds {
		if p.bounds[i].bits == bits {
			p.boundsNext = i + 1
			return p.bounds[i].text
		}
	}
	if len(p.bounds) >= 256 { // bounds that never repeat: start afresh
		p.bounds = p.bounds[:0]
	}
	var t []byte
	if v == 0 {
		t = []byte("0") // expfmt writes -0 as 0
	} else {
		t = strconv.AppendFloat(nil, v, 'g', -1, 64)
	}
	p.bounds = append(p.bounds, boundText{bits: bits, text: t})
	p.boundsNext = len(p.bounds)
	return t
}
