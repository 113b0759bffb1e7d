package collector

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Parser reads the Prometheus text exposition format 0.0.4 one sample at a
// time, in place: names and label values point into the body unless they had
// to be unescaped, and every buffer is reused by the next Reset, so a parser
// that has seen a page once parses the next page of the same shape without
// allocating.
//
// What it accepts is a superset of what expfmt.TextParser accepts, and for
// every page expfmt accepts it yields the same samples, with two documented
// extensions (see Sample.Family): counter samples named family_total or
// family_created, and histogram or summary samples named family_created,
// belong to their declared family. Where expfmt is stricter than needed it is
// lenient: a last line without a newline, blanks after the value or the
// timestamp, blanks after a TYPE keyword. A gauge histogram is reported as a
// Histogram.
//
// ResetReader parses a page as it is read, through a window of a fixed size
// (streamWindow) that holds complete lines only, so a page costs the window,
// not its size. What the parser keeps across lines (family names) is copied
// out of the window; the samples are the same as for the whole page.
//
// A Parser is not safe for concurrent use.
type Parser struct {
	// body is the text being parsed: the whole page (Reset), or the
	// complete lines in the window (ResetReader).
	body []byte
	pos  int
	line int // number of the line being read, from 1
	err  error

	// Streaming: win[:len(body)] is body, win[len(body):filled] the start of
	// the next line, read but not yet complete.
	r      io.Reader
	win    []byte
	filled int
	window int // size of the window; streamWindow unless a test sets it

	sample  Sample
	labels  []Label
	scratch []byte // unescaped label values and quoted names of the current line

	// Families declared (# HELP, # TYPE) or met (samples) in this body. Entries
	// survive Reset and are revived by generation, so the map is written only
	// the first time a family name is seen; samples of the family of the last
	// # TYPE line, which is every sample of a regular page, never touch it.
	fams  []family
	index map[string]int32
	gen   uint32
	live  int // families of the current generation

	cur       int32 // family of the last # TYPE line, -1 when none
	curShadow uint8 // suffixes of cur that name a family of their own
	shadowOK  bool  // curShadow is up to date
}

type family struct {
	name    []byte
	typ     FamilyType
	typeSet bool // by a # TYPE line, or Untyped by a first sample
	gen     uint32
}

// Suffixes a sample name may add to its family name.
const (
	sufBucket uint8 = 1 << iota
	sufSum
	sufCount
	sufTotal
	sufCreated
)

func allowedSuffixes(t FamilyType) uint8 {
	switch t {
	case Histogram:
		return sufBucket | sufSum | sufCount | sufCreated
	case Summary:
		return sufSum | sufCount | sufCreated
	case Counter:
		return sufTotal | sufCreated
	}
	return 0
}

func suffixBit(s []byte) uint8 {
	switch string(s) {
	case "_bucket":
		return sufBucket
	case "_sum":
		return sufSum
	case "_count":
		return sufCount
	case "_total":
		return sufTotal
	case "_created":
		return sufCreated
	}
	return 0
}

var suffixNames = [...]string{"_bucket", "_sum", "_count", "_total", "_created"}

// ParseError is a malformed exposition. In text Line counts from 1; in
// protobuf, which has no lines, Line is 0 and Offset is the byte of the page
// where the fault was found.
type ParseError struct {
	Line   int
	Offset int64
	Msg    string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("byte %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// NewParser returns a parser with no body; call Reset before Next.
func NewParser() *Parser {
	return &Parser{index: make(map[string]int32), cur: -1}
}

// streamWindow is the window ResetReader reads into: large enough that
// refilling it costs nothing next to parsing it, small next to a page (a
// Traefik with 500 services writes 43 MB).
const streamWindow = 256 << 10

// Reset starts parsing body. The body is not copied and must not change until
// the last Sample has been used.
func (p *Parser) Reset(body []byte) {
	p.body, p.pos, p.line, p.err = body, 0, 1, nil
	p.r = nil
	// A page whose family names churn would grow the index forever; start it
	// afresh when most of it is stale.
	if len(p.fams) > 4*p.live+1024 {
		p.fams = p.fams[:0]
		clear(p.index)
	}
	p.gen++
	p.live = 0
	p.cur, p.shadowOK = -1, false
}

// ResetReader starts parsing what r yields, reading it a window at a time.
// Lines longer than the window grow it for the rest of this page; r bounds
// what is read in total (the scraper stops at traefik.max_body). An error of
// r ends the page: Next returns false and Err returns that error, not a
// *ParseError, after the samples of the lines read whole before it.
func (p *Parser) ResetReader(r io.Reader) {
	n := p.window
	if n <= 0 {
		n = streamWindow
	}
	if len(p.win) != n { // first use, or grown by a long line
		p.win = make([]byte, n)
	}
	p.Reset(p.win[:0])
	p.r, p.filled = r, 0
}

// fill moves the partial line after body to the front of the window and
// reads until the window is full, then makes body the complete lines in it.
// At the end of r, body is all that is left, a last line without a newline
// included. It returns false when there is nothing more to parse.
func (p *Parser) fill() bool {
	if p.r == nil {
		return false
	}
	n := copy(p.win, p.win[len(p.body):p.filled])
	scan := n // no newline before scan
	p.body, p.pos = p.win[:0], 0
	for {
		if n == len(p.win) {
			// A line longer than the window.
			w := make([]byte, 2*len(p.win))
			copy(w, p.win[:n])
			p.win = w
		}
		m, err := p.r.Read(p.win[n:])
		n += m
		p.filled = n
		switch {
		case err == io.EOF:
			p.r = nil
			p.body = p.win[:n]
			return n > 0
		case err != nil:
			p.r = nil
			p.err = err
			return false
		case n < len(p.win):
			continue
		}
		if i := bytes.LastIndexByte(p.win[scan:n], '\n'); i >= 0 {
			p.body = p.win[:scan+i+1]
			return true
		}
		scan = n
	}
}

// Sample returns the current sample. It and every slice in it are valid until
// the next call to Next or Reset.
func (p *Parser) Sample() *Sample { return &p.sample }

// Err returns the error that stopped Next, or nil at a clean end: a
// *ParseError, or with ResetReader the reader's error.
func (p *Parser) Err() error { return p.err }

// Next advances to the next sample. It returns false at the end of the body
// or on the first error, which Err then returns.
func (p *Parser) Next() bool {
	if p.err != nil {
		return false
	}
	for {
		if p.pos >= len(p.body) && !p.fill() {
			return false
		}
		p.skipBlanks()
		if p.pos >= len(p.body) {
			continue // blanks ending the page
		}
		switch p.body[p.pos] {
		case '\n':
			p.pos++
			p.line++
			continue
		case '#':
			p.pos++
			if !p.comment() {
				return false
			}
			continue
		}
		return p.sampleLine()
	}
}

func (p *Parser) fail(format string, args ...any) bool {
	p.err = &ParseError{Line: p.line, Msg: fmt.Sprintf(format, args...)}
	return false
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func (p *Parser) skipBlanks() {
	for p.pos < len(p.body) && isBlank(p.body[p.pos]) {
		p.pos++
	}
}

// at returns the byte at pos, or '\n' at the end of the body so that a last
// line without a newline reads like any other.
func (p *Parser) at() byte {
	if p.pos < len(p.body) {
		return p.body[p.pos]
	}
	return '\n'
}

// endLine consumes the newline that ends the current line, if any.
func (p *Parser) endLine() {
	if p.pos < len(p.body) {
		p.pos++ // the '\n'
		p.line++
	}
}

func (p *Parser) skipLine() {
	if i := bytes.IndexByte(p.body[p.pos:], '\n'); i >= 0 {
		p.pos += i
	} else {
		p.pos = len(p.body)
	}
	p.endLine()
}

// comment reads a line after its '#': # HELP and # TYPE lines declare
// families, everything else is ignored. The grammar follows expfmt: the
// keyword need not be separated from the '#', and a name alone on the line
// declares nothing.
func (p *Parser) comment() bool {
	b := p.body
	p.skipBlanks()
	start := p.pos
	for p.pos < len(b) && !isBlank(b[p.pos]) && b[p.pos] != '\n' {
		p.pos++
	}
	kw := b[start:p.pos]
	if p.at() == '\n' || (string(kw) != "HELP" && string(kw) != "TYPE") {
		p.skipLine()
		return true
	}
	p.skipBlanks()
	if p.at() == '\n' {
		p.endLine()
		return true
	}
	p.scratch = p.scratch[:0]
	name, _, ok := p.readName(true)
	if !ok {
		return false
	}
	if c := p.at(); c == '\n' {
		p.endLine()
		return true
	} else if !isBlank(c) {
		return p.fail("invalid metric name in # %s line", kw)
	}
	if !validName(name, true) {
		return p.fail("invalid metric name %q", clip(name))
	}
	f := p.resolve(name, false)
	p.skipBlanks()
	if kw[0] == 'H' || p.at() == '\n' {
		p.skipLine()
		return true
	}
	end := p.pos
	for end < len(b) && b[end] != '\n' {
		end++
	}
	word := bytes.TrimRight(b[p.pos:end], " \t")
	typ, ok := parseType(word)
	if !ok {
		return p.fail("unknown metric type %q", clip(word))
	}
	fam := &p.fams[f]
	if fam.typeSet || !bytes.Equal(fam.name, name) {
		return p.fail("second TYPE line for %q, or TYPE after its samples", clip(name))
	}
	fam.typ, fam.typeSet = typ, true
	p.cur, p.shadowOK = f, false
	p.pos = end
	p.endLine()
	return true
}

// parseType reads a # TYPE word as expfmt does: any case, backslashes
// dropped, gauge histograms as histograms.
func parseType(w []byte) (FamilyType, bool) {
	var up [16]byte
	u := up[:0]
	for _, c := range w {
		if c >= utf8.RuneSelf {
			// expfmt upper-cases with Unicode rules ("ſ" is an "S"); rare
			// enough to pay for an allocation.
			return typeWord(strings.ToUpper(strings.ReplaceAll(string(w), `\`, "")))
		}
		if c == '\\' {
			continue
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if len(u) == len(up) {
			return 0, false
		}
		u = append(u, c)
	}
	return typeWord(string(u))
}

func typeWord(s string) (FamilyType, bool) {
	switch s {
	case "COUNTER":
		return Counter, true
	case "GAUGE":
		return Gauge, true
	case "SUMMARY":
		return Summary, true
	case "UNTYPED":
		return Untyped, true
	case "HISTOGRAM", "GAUGE_HISTOGRAM", "GAUGEHISTOGRAM":
		return Histogram, true
	}
	return 0, false
}

// sampleLine reads one sample; pos is at its first non-blank byte.
func (p *Parser) sampleLine() bool {
	b := p.body
	p.scratch = p.scratch[:0]
	p.labels = p.labels[:0]
	var name []byte
	if b[p.pos] == '{' {
		// The name may be written inside the braces: {name,label="v"} or
		// {"name"}.
		p.pos++
		if !p.readLabels(&name) {
			return false
		}
		if name == nil {
			return p.fail("no metric name")
		}
	} else {
		var quoted, ok bool
		if name, quoted, ok = p.readName(true); !ok {
			return false
		}
		if len(name) == 0 || (quoted && !validName(name, true)) {
			return p.fail("invalid metric name %q", clip(name))
		}
		p.skipBlanks()
		if p.at() == '{' {
			p.pos++
			if !p.readLabels(nil) {
				return false
			}
		}
	}

	// Value, then an optional timestamp.
	start := p.pos
	for p.pos < len(b) && !isBlank(b[p.pos]) && b[p.pos] != '\n' {
		p.pos++
	}
	v, ok := parseValue(b[start:p.pos])
	if !ok {
		if start == p.pos {
			return p.fail("missing value for %q", clip(name))
		}
		return p.fail("invalid value %q", clip(b[start:p.pos]))
	}
	s := &p.sample
	s.Value, s.TimestampMs, s.HasTimestamp = v, 0, false
	p.skipBlanks()
	if p.at() != '\n' {
		start = p.pos
		for p.pos < len(b) && !isBlank(b[p.pos]) && b[p.pos] != '\n' {
			p.pos++
		}
		ts, err := strconv.ParseInt(unsafeString(b[start:p.pos]), 10, 64)
		if err != nil {
			return p.fail("invalid timestamp %q", clip(b[start:p.pos]))
		}
		s.TimestampMs, s.HasTimestamp = ts, true
		p.skipBlanks()
		if p.at() != '\n' {
			return p.fail("unexpected text after the timestamp")
		}
	}

	f := p.sampleFamily(name)
	fam := &p.fams[f]
	fam.typeSet = true
	s.Family, s.Type, s.Name, s.Labels = fam.name, fam.typ, name, p.labels
	if !p.checkLabelNames(fam.typ) {
		return false
	}
	p.endLine()
	return true
}

// readLabels reads label pairs after a '{' up to and including the '}'. With
// name non-nil it also takes the one bare name that names the metric.
func (p *Parser) readLabels(name *[]byte) bool {
	b := p.body
	for {
		p.skipBlanks()
		if p.at() == '}' {
			p.pos++
			p.skipBlanks()
			return true
		}
		ln, quoted, ok := p.readName(false)
		if !ok {
			return false
		}
		if len(ln) == 0 {
			if p.at() == '\n' {
				return p.fail("unterminated label set")
			}
			return p.fail("invalid label name at %q", clip(b[p.pos:]))
		}
		p.skipBlanks()
		if c := p.at(); c != '=' {
			if name == nil || *name != nil || (c != ',' && c != '}') {
				return p.fail("expected '=' after label name %q", clip(ln))
			}
			if quoted && !validName(ln, true) {
				return p.fail("invalid metric name %q", clip(ln))
			}
			*name = ln
			if c == ',' {
				p.pos++
			}
			continue
		}
		p.pos++
		if quoted && !validName(ln, false) {
			return p.fail("invalid label name %q", clip(ln))
		}
		if string(ln) == "__name__" {
			return p.fail("label name __name__ is reserved")
		}
		p.skipBlanks()
		if p.at() != '"' {
			return p.fail("expected '\"' to open the value of label %q", clip(ln))
		}
		p.pos++
		lv, ok := p.readLabelValue()
		if !ok {
			return false
		}
		p.labels = append(p.labels, Label{Name: ln, Value: lv})
		p.skipBlanks()
		switch p.at() {
		case ',':
			p.pos++
		case '}':
		default:
			return p.fail("expected ',' or '}' after the value of label %q", clip(ln))
		}
	}
}

// lvStop marks the bytes that end the fast scan of a label value.
var lvStop = func() (t [256]bool) {
	t['"'], t['\\'], t['\n'] = true, true, true
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = true
	}
	return t
}()

// readLabelValue reads a label value after its opening quote and consumes
// the closing one. The result points into the body unless it had escapes.
func (p *Parser) readLabelValue() ([]byte, bool) {
	b := p.body
	start := p.pos
	i := start
	for i < len(b) && !lvStop[b[i]] {
		i++
	}
	if i < len(b) && b[i] == '"' {
		p.pos = i + 1
		return b[start:i], true
	}
	// Escapes or non-ASCII bytes: the general path.
	out := len(p.scratch)
	escaped, wide := false, false
	for i = start; i < len(b); i++ {
		c := b[i]
		if c == '\\' {
			escaped = true
			break
		}
		if c == '"' || c == '\n' {
			break
		}
		if c >= utf8.RuneSelf {
			wide = true
		}
	}
	var v []byte
	if !escaped {
		if i >= len(b) || b[i] == '\n' {
			return nil, p.fail("unterminated label value")
		}
		v = b[start:i]
	} else {
		p.scratch = append(p.scratch, b[start:i]...)
		for {
			if i >= len(b) || b[i] == '\n' {
				return nil, p.fail("unterminated label value")
			}
			c := b[i]
			if c == '"' {
				break
			}
			if c == '\\' {
				i++
				if i >= len(b) {
					return nil, p.fail("unterminated label value")
				}
				switch b[i] {
				case '\\', '"':
					c = b[i]
				case 'n':
					c = '\n'
				default:
					return nil, p.fail("invalid escape sequence '\\%c' in label value", b[i])
				}
			} else if c >= utf8.RuneSelf {
				wide = true
			}
			p.scratch = append(p.scratch, c)
			i++
		}
		v = p.scratch[out:len(p.scratch):len(p.scratch)]
	}
	if wide && !utf8.Valid(v) {
		return nil, p.fail("label value is not valid UTF-8")
	}
	p.pos = i + 1
	return v, true
}

// metricByte and labelByte mark the bytes of a metric name and of a label
// name (the same without ':').
var metricByte, labelByte = func() (m, l [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		l[c], l[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		l[c] = true
	}
	l['_'] = true
	m = l
	m[':'] = true
	return m, l
}()

func nameTable(colon bool) *[256]bool {
	if colon {
		return &metricByte
	}
	return &labelByte
}

// readName reads a metric name (colon) or a label name as expfmt does: runs
// of name bytes and quoted runs, ending right after a closing quote. It
// returns an empty name when the first byte cannot start one. A name without
// quotes is valid if not empty; quoted reports that the caller must check it
// with validName.
func (p *Parser) readName(colon bool) (name []byte, quoted, ok bool) {
	b := p.body
	start := p.pos
	if start >= len(b) || ('0' <= b[start] && b[start] <= '9') {
		return nil, false, true
	}
	tab := nameTable(colon)
	i := start
	for i < len(b) && tab[b[i]] {
		i++
	}
	if i >= len(b) || b[i] != '"' {
		p.pos = i
		return b[start:i], false, true
	}
	v, ok := p.readQuotedName(i, tab)
	return v, true, ok
}

// readQuotedName is readName from the first quote at i on.
func (p *Parser) readQuotedName(i int, tab *[256]bool) ([]byte, bool) {
	b := p.body
	start := p.pos
	// Quoted runs are rare. An escape never survives validation, but a
	// # HELP or # TYPE name alone on its line is not validated, so escapes
	// are read as expfmt reads them.
	out := len(p.scratch)
	p.scratch = append(p.scratch, b[start:i]...)
	quoted := false
	for ; i < len(b); i++ {
		c := b[i]
		if quoted {
			switch c {
			case '"':
				p.pos = i + 1
				return p.scratch[out:len(p.scratch):len(p.scratch)], true
			case '\n':
				return nil, p.fail("newline in a quoted name")
			case '\\':
				if i++; i < len(b) {
					switch b[i] {
					case '\\', '"':
						c = b[i]
					case 'n':
						c = '\n'
					default:
						return nil, p.fail("invalid escape sequence in a quoted name")
					}
				}
			}
			p.scratch = append(p.scratch, c)
			continue
		}
		switch {
		case c == '"':
			quoted = true
		case tab[c]:
			p.scratch = append(p.scratch, c)
		default:
			p.pos = i
			return p.scratch[out:len(p.scratch):len(p.scratch)], true
		}
	}
	if quoted {
		return nil, p.fail("unterminated quoted name")
	}
	p.pos = i
	return p.scratch[out:len(p.scratch):len(p.scratch)], true
}

// validName reports whether n is a legacy Prometheus metric name (colon) or
// label name.
func validName(n []byte, colon bool) bool {
	if len(n) == 0 || ('0' <= n[0] && n[0] <= '9') {
		return false
	}
	tab := nameTable(colon)
	for _, c := range n {
		if !tab[c] {
			return false
		}
	}
	return true
}

// checkLabelNames rejects a label name given twice, except le in a histogram
// and quantile in a summary, which expfmt lets repeat (the last one counts).
func (p *Parser) checkLabelNames(t FamilyType) bool {
	ls := p.labels
	for i := 1; i < len(ls); i++ {
		n := ls[i].Name
		if (t == Histogram && string(n) == "le") || (t == Summary && string(n) == "quantile") {
			continue
		}
		for j := 0; j < i; j++ {
			if bytes.Equal(n, ls[j].Name) {
				return p.fail("label %q given twice", clip(n))
			}
		}
	}
	return true
}

// sampleFamily finds the family of a sample name. The common case, a sample
// of the last declared family, costs a prefix comparison.
func (p *Parser) sampleFamily(name []byte) int32 {
	if p.cur >= 0 {
		c := &p.fams[p.cur]
		if len(name) >= len(c.name) && string(name[:len(c.name)]) == string(c.name) {
			if len(name) == len(c.name) {
				return p.cur
			}
			bit := suffixBit(name[len(c.name):])
			if bit&allowedSuffixes(c.typ) != 0 {
				if !p.shadowOK {
					p.updateShadow()
				}
				if bit&p.curShadow == 0 {
					return p.cur
				}
			}
		}
	}
	return p.resolve(name, true)
}

// updateShadow records which suffixed names of cur are families of their own
// (declared by a # HELP line, say), since those take precedence.
func (p *Parser) updateShadow() {
	p.curShadow, p.shadowOK = 0, true
	c := p.fams[p.cur].name
	var buf [256]byte
	if len(c)+len("_created") > len(buf) {
		p.curShadow = 0xff // long names: let resolve decide
		return
	}
	n := copy(buf[:], c)
	for i, s := range suffixNames {
		m := copy(buf[n:], s)
		if p.lookup(buf[:n+m]) >= 0 {
			p.curShadow |= 1 << i
		}
	}
}

func (p *Parser) lookup(name []byte) int32 {
	if i, ok := p.index[string(name)]; ok && p.fams[i].gen == p.gen {
		return i
	}
	return -1
}

// resolve finds the family of a name as expfmt does: the family of that
// exact name, else the summary or histogram whose suffixed name it is, else a
// new untyped family. For samples (ext) a counter's _total and _created and
// a histogram's or summary's _created join their family too.
func (p *Parser) resolve(name []byte, ext bool) int32 {
	if f := p.lookup(name); f >= 0 {
		return f
	}
	if base, ok := trimSuffix(name, "_sum", "_count"); ok {
		if f := p.lookup(base); f >= 0 && p.fams[f].typ == Summary {
			return f
		}
	}
	if base, ok := trimSuffix(name, "_sum", "_count", "_bucket"); ok {
		if f := p.lookup(base); f >= 0 && p.fams[f].typ == Histogram {
			return f
		}
	}
	if ext {
		if base, ok := trimSuffix(name, "_total"); ok {
			if f := p.lookup(base); f >= 0 && p.fams[f].typ == Counter {
				return f
			}
		}
		if base, ok := trimSuffix(name, "_created"); ok {
			if f := p.lookup(base); f >= 0 && allowedSuffixes(p.fams[f].typ)&sufCreated != 0 {
				return f
			}
		}
	}
	return p.create(name)
}

func trimSuffix(name []byte, suffixes ...string) ([]byte, bool) {
	for _, s := range suffixes {
		if len(name) > len(s) && string(name[len(name)-len(s):]) == s {
			return name[:len(name)-len(s)], true
		}
	}
	return nil, false
}

func (p *Parser) create(name []byte) int32 {
	p.shadowOK = false
	p.live++
	if i, ok := p.index[string(name)]; ok {
		f := &p.fams[i]
		f.typ, f.typeSet, f.gen = Untyped, false, p.gen
		return i
	}
	i := int32(len(p.fams))
	key := string(name)
	p.fams = append(p.fams, family{name: []byte(key), gen: p.gen})
	p.index[key] = i
	return i
}

// parseValue reads a sample value as expfmt does (strconv.ParseFloat without
// hex floats or underscores), with a fast path for small integers.
func parseValue(t []byte) (float64, bool) {
	if n := len(t); n > 0 && n <= 15 {
		var u uint64
		i := 0
		for ; i < n; i++ {
			d := t[i] - '0'
			if d > 9 {
				break
			}
			u = u*10 + uint64(d)
		}
		if i == n {
			return float64(u), true // exact: below 2^53
		}
	}
	if len(t) == 0 || bytes.ContainsAny(t, "pP_") {
		return 0, false
	}
	v, err := strconv.ParseFloat(unsafeString(t), 64)
	return v, err == nil
}

// unsafeString views b as a string for strconv, which copies what it keeps.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// clip shortens text quoted in an error.
func clip(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
