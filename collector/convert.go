package collector

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/url"
	"path"
	"sort"
	"strconv"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// SampleReader is what Convert reads one scrape from. *Parser is one; the
// interface keeps the converter testable with a slice of samples.
type SampleReader interface {
	Next() bool
	Sample() *Sample
	Err() error
}

// ConvertOptions configure a Converter for one target.
type ConvertOptions struct {
	// Schema is config.SchemaTraefik, SchemaPrometheus or SchemaTelegraf.
	Schema string
	// Precision is the unit of the written timestamps (time.Second for
	// precision=s); it must match the precision of the write.
	Precision time.Duration
	// Tags are the static tags: host, instance and config tags, merged. A
	// scraped label with the same key wins over a static tag: letting the
	// static tag win would merge distinct series, whose points would then
	// overwrite each other in InfluxDB.
	Tags map[string]string
	// URL is the scraped URL, written as the url tag in the telegraf schema
	// as Telegraf does (credentials stripped). Telegraf overwrites a scraped
	// label named url with it, which merges the series of
	// traefik_service_server_up (one per backend server, told apart by
	// url) into one whose points overwrite each other. Here, as for every
	// static tag, the scraped label wins: no two points of one series share
	// a timestamp, and pages without a url label look as under Telegraf.
	// The url tag replaces a configured tag named url, as under Telegraf.
	URL string
	// Include and Exclude are path.Match globs on the family name. An empty
	// Include takes every family; Exclude wins over Include.
	Include, Exclude []string
	// SeriesTTL is how long the traefik schema remembers a series that is
	// no longer on the page; 0 remembers it forever.
	SeriesTTL time.Duration
	// MaxSeries bounds the series the traefik schema remembers (0: no
	// bound). A sample of a series that would go over it is skipped and
	// counted as SkipSeriesLimit, until series expire (SeriesTTL).
	MaxSeries int
}

// SkipReason says why a sample was not written.
type SkipReason int

// Reasons a sample is skipped; their String is the self-metric label.
const (
	SkipNaN          SkipReason = iota // value is NaN
	SkipInf                            // value is ±Inf
	SkipInvalidLabel                   // a label cannot be written: control character, trailing backslash, bad UTF-8, duplicate name, bad or empty le/quantile
	SkipSeriesLimit                    // a new series of the traefik schema over MaxSeries
	NumSkipReasons
)

var skipReasonNames = [NumSkipReasons]string{"nan", "inf", "invalid_label", "series_limit"}

func (r SkipReason) String() string {
	if r < 0 || r >= NumSkipReasons {
		return "unknown"
	}
	return skipReasonNames[r]
}

// ConvertStats counts what one Convert did.
type ConvertStats struct {
	// Samples is every sample read from the page.
	Samples int
	// Ignored counts samples left out on purpose: families outside
	// metrics.include/exclude, and _created samples in the traefik and
	// telegraf schemas.
	Ignored int
	// Points is the number of lines written.
	Points int
	// Skipped counts samples that could not be written, by reason.
	Skipped [NumSkipReasons]int
	// EmptyLabels counts labels with an empty value left out of the tags of
	// the samples converted. In Prometheus an empty value is the same as no
	// label (Traefik writes cn="" for a certificate without a common name),
	// and line protocol has no empty tag value, so the sample is kept as if
	// the label were absent.
	EmptyLabels int
}

type schemaKind uint8

const (
	schemaTraefik schemaKind = iota
	schemaPrometheus
	schemaTelegraf
)

// sampleRole is what a sample is within its family.
type sampleRole uint8

const (
	roleValue sampleRole = iota // counter, gauge, untyped value
	roleBucket
	roleSum
	roleCount
	roleQuantile
	roleCreated
)

type staticTag struct {
	key  []byte
	text []byte // ",key=value", escaped
}

type boundEntry struct {
	raw   string
	val   float64
	field string
}

// Converter turns scrapes of one target into InfluxDB line protocol. It is
// not safe for concurrent use: give each target its own.
//
// Every point of one scrape carries the scrape's time in the configured
// precision, made strictly greater than the previous scrape's, so that two
// scrapes never write the same series at the same timestamp. Timestamps on
// the page are ignored.
//
// The traefik schema reproduces Traefik v2's InfluxDB exporter: dotted
// measurement names (see traefikV2Names), counters as float field count =
// the increase since the previous scrape, gauges and untyped as float field
// value, histograms as p50, p90, p95, p99 (seconds, estimated from the
// bucket increases of the interval, see bucketQuantile) plus count and sum
// increases, summaries as p<100q> fields (the summary's own quantiles) plus
// count and sum increases. The first scrape is a baseline and writes no
// counter, histogram or summary, unless UnmarshalState gave the converter
// the memory of an earlier one; a series that appears later counts from
// zero; a counter, histogram count or bucket that went down was reset and
// counts from zero, and so does every series of the target when its
// process_start_time_seconds changes (seen before the traefik_* families,
// as families are sorted by name; were it later on the page, the
// per-series decrease still catches most resets). A series with no
// increase writes nothing. Gauges are written every scrape.
//
// The prometheus schema is InfluxDB 1.x's Prometheus endpoint: measurement
// = sample name, float field value, every label a tag (le and quantile
// too), cumulative values. The telegraf schema is Telegraf's
// inputs.prometheus with metric_version = 1: measurement = family name,
// field counter, gauge or value; histograms and summaries as one point per
// series with count, sum and one field per bucket bound or quantile, all
// cumulative, plus Telegraf's url tag (the scraped URL), except on samples
// with a url label of their own, which keep it: a deliberate difference
// from Telegraf, see ConvertOptions.URL.
//
// Every numeric field is a float. Samples whose value is NaN or ±Inf, or
// with an unwritable label, are skipped and counted. A label with an empty
// value is left out, as Prometheus takes it to be absent, and counted; the
// sample is kept.
type Converter struct {
	schema  schemaKind
	prec    int64
	static  []staticTag
	include []string
	exclude []string
	ttl     int64
	max     int
	st      *state

	// One scrape.
	gen       uint64
	now       int64
	tsText    []byte // " <timestamp>\n"
	baseline  bool
	restarted bool

	// The current family, and what was worked out for every family seen.
	fam  []byte
	fi   *familyInfo
	fams map[string]*familyInfo

	labels []int32 // the labels of a sample, sorted, as indices
	empty  int     // labels with empty values left out in this scrape
	key    []byte
	// skey is the state's key of the series in key (see state), and
	// names the label names last seen, by position.
	skey    []byte
	names   []*nameRef
	nameTab map[string]*nameRef
	// lastID is the slot last looked up, expect the one after it: pages
	// list their series in the same order every time, so it is tried
	// before hashing the key.
	lastID, expect int32
	// pending is the histogram and summary series of the current family,
	// written at its end; pendKeys holds their line-protocol keys.
	pending  []pendingSeries
	pendKeys []byte
	famGen   uint32
	bounds   []boundEntry
	deltas   []float64

	// Telegraf: the line being built from a histogram or summary series.
	openStart, openKeyLen int
	open                  bool

	// flushFn, when set, takes the complete lines of out when out has grown
	// by the step it asked for last (at most flushEvery bytes), and says how
	// many leading bytes it took and how many more it wants before the next
	// call.
	flushFn    func(done []byte) (took, more int)
	flushFirst int
	flushEvery int
	flushNext  int
	// flushOwned: what flushFn takes becomes its own (a queue that keeps
	// the bytes rather than a copy), so out moves to a new buffer after.
	flushOwned bool

	// tagsFor is the family of the histogram or summary series whose
	// labels (le and quantile left out) are remembered in tagsLabels and
	// tagsBuf, and whose keys c.key and c.skey still hold; nil when none.
	// tagsEmpty is how many of those labels were empty.
	// tagsSeries is the Sample.Series they came with: a sample of the same
	// non-zero Series has them without a comparison (see sameSeries).
	tagsFor    *familyInfo
	tagsLabels []tagsLabel
	tagsBuf    []byte
	tagsEmpty  int
	tagsSeries uint64
	// noTagsCache turns the above off, for tests comparing with it on.
	noTagsCache bool
}

const processStartFamily = "process_start_time_seconds"

// NewConverter checks opts and returns a Converter with no history.
func NewConverter(opts ConvertOptions) (*Converter, error) {
	c := &Converter{st: newState(), fams: make(map[string]*familyInfo), nameTab: make(map[string]*nameRef), lastID: -1, famGen: 1}
	switch opts.Schema {
	case config.SchemaTraefik:
		c.schema = schemaTraefik
	case config.SchemaPrometheus:
		c.schema = schemaPrometheus
	case config.SchemaTelegraf:
		c.schema = schemaTelegraf
	default:
		return nil, fmt.Errorf("schema: must be one of traefik, prometheus, telegraf, got %q", opts.Schema)
	}
	switch opts.Precision {
	case time.Nanosecond, time.Microsecond, time.Millisecond, time.Second:
		c.prec = int64(opts.Precision)
	default:
		return nil, fmt.Errorf("precision: must be 1ns, 1µs, 1ms or 1s, got %s", opts.Precision)
	}
	if opts.SeriesTTL < 0 {
		return nil, fmt.Errorf("series TTL: must not be negative, got %s", opts.SeriesTTL)
	}
	c.ttl = int64(opts.SeriesTTL)
	if opts.MaxSeries < 0 {
		return nil, fmt.Errorf("max series: must not be negative, got %d", opts.MaxSeries)
	}
	c.max = opts.MaxSeries
	for _, list := range [][]string{opts.Include, opts.Exclude} {
		for _, p := range list {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("metrics pattern %q: %w", p, err)
			}
		}
	}
	c.include = append([]string(nil), opts.Include...)
	c.exclude = append([]string(nil), opts.Exclude...)

	tags := make(map[string]string, len(opts.Tags)+1)
	for k, v := range opts.Tags {
		tags[k] = v
	}
	if c.schema == schemaTelegraf && opts.URL != "" {
		// Over a configured url tag; under a scraped url label (appendTags).
		tags["url"] = stripUserinfo(opts.URL)
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := tags[k]
		if k == "" || v == "" {
			return nil, fmt.Errorf("tags: empty tag key or value (%q=%q)", k, v)
		}
		text := []byte{','}
		text, ok := appendEscaped(text, []byte(k), &tagClass)
		text = append(text, '=')
		text, ok2 := appendEscaped(text, []byte(v), &tagClass)
		if !ok || !ok2 {
			return nil, fmt.Errorf("tags: %q=%q cannot be written in line protocol (control character, trailing backslash or invalid UTF-8)", k, v)
		}
		c.static = append(c.static, staticTag{key: []byte(k), text: text})
	}
	return c, nil
}

func stripUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// Convert reads one scrape from src and appends its line protocol to out,
// every line stamped with ts. On a parse error it returns the lines of the
// samples read before the error together with the error: their counters are
// already accounted for, so the caller should write them. Histogram and
// summary series cut by the error are not written nor remembered, and a
// failed first scrape is not taken as the baseline. After setFlush, out
// must be empty, and what is returned is what the flush did not take.
func (c *Converter) Convert(src SampleReader, ts time.Time, out []byte) ([]byte, ConvertStats, error) {
	var stats ConvertStats
	c.gen++
	c.now = ts.UnixNano()
	tsUnits := c.now / c.prec
	if c.st.lastTS != 0 && tsUnits <= c.st.lastTS {
		tsUnits = c.st.lastTS + 1
	}
	c.tsText = append(c.tsText[:0], ' ')
	c.tsText = strconv.AppendInt(c.tsText, tsUnits, 10)
	c.tsText = append(c.tsText, '\n')
	c.baseline = !c.st.primed
	c.restarted = false
	c.fam = c.fam[:0]
	c.fi = nil
	c.lastID, c.expect = -1, 0
	c.tagsFor = nil
	c.open = false
	c.empty = 0
	c.flushNext = c.flushFirst

	first := true
	for src.Next() {
		s := src.Sample()
		stats.Samples++
		if first || !bytes.Equal(s.Family, c.fam) {
			out = c.endFamily(out, &stats)
			c.startFamily(s)
			first = false
		}
		if c.fi.start && len(s.Labels) == 0 && bytes.Equal(s.Name, s.Family) && !math.IsNaN(s.Value) && !math.IsInf(s.Value, 0) {
			if c.st.processStart != 0 && s.Value != c.st.processStart {
				c.restarted = true
			}
			c.st.processStart = s.Value
		}
		if !c.fi.ok {
			stats.Ignored++
			continue
		}
		out = c.sample(s, out, &stats)
		if c.flushFn != nil && len(out) >= c.flushNext {
			out = c.flushOut(out)
		}
	}
	err := src.Err()
	if err != nil {
		// Series cut by the error: neither written nor remembered.
		c.endPending()
		out = c.closeOpen(out)
	} else {
		out = c.endFamily(out, &stats)
		c.st.primed = true
	}
	c.st.lastTS = tsUnits
	stats.EmptyLabels = c.empty
	moved := false
	if c.ttl > 0 && c.now-c.st.lastSweep >= c.ttl/4 {
		moved = c.st.expire(c.now - c.ttl)
		c.st.lastSweep = c.now
	} else if c.st.wasteful() {
		c.st.compact(math.MinInt64)
		moved = true
	}
	if moved {
		c.stateReplaced()
	}
	if err != nil {
		return out, stats, fmt.Errorf("convert: %w", err)
	}
	return out, stats, nil
}

// setFlush makes Convert hand its complete lines to fn as it goes instead of
// returning the whole scrape's. fn is first called once out holds first
// bytes (at least a line). It returns how many leading bytes it took and how
// many more bytes of lines it wants before it is called again; out grows by
// that much, but at least a line and at most every bytes, between calls.
// Convert returns what fn did not take. A nil fn returns everything.
//
// With owned, the bytes fn takes become fn's: out never writes to them
// again. The rest moves to a new buffer sized for what fn asked for next,
// and the caller must not reuse a buffer it passed to Convert either.
func (c *Converter) setFlush(first, every int, owned bool, fn func(done []byte) (took, more int)) {
	c.flushFn, c.flushFirst, c.flushEvery = fn, max(first, 1), max(every, 1)
	c.flushOwned = owned && fn != nil
}

// ownedSlack is room beyond what flushFn asked for in a buffer flushOut
// makes: out is handed over once it has grown past that, by up to a
// sample's lines.
const ownedSlack = 16 << 10

// flushOut hands the complete lines of out to c.flushFn and keeps the rest.
func (c *Converter) flushOut(out []byte) []byte {
	done := len(out)
	if c.open {
		done = c.openStart // the telegraf line being built stays
	}
	k, more := c.flushFn(out[:done])
	step := min(max(more, 1), c.flushEvery)
	rest := out[k:]
	switch {
	case c.flushOwned && (k > 0 || cap(out) < len(out)+step):
		// out[:k] is fn's now, or out is too small for what fn asked for
		// (the first lines of a scrape): carry on in a buffer of our own,
		// made large enough at once rather than grown by append.
		out = append(make([]byte, 0, len(rest)+step+ownedSlack), rest...)
	case k > 0:
		out = out[:copy(out, rest)]
	}
	if k > 0 && c.open {
		c.openStart -= k
	}
	c.flushNext = len(out) + step
	return out
}

// familyInfo is what every sample of a family shares.
type familyInfo struct {
	typ   FamilyType
	ok    bool // included
	start bool // process_start_time_seconds
	// meas is the escaped measurement (traefik and telegraf schemas);
	// measTotal the traefik-schema one of family_total samples of a
	// counter family declared without _total, as OpenMetrics does.
	meas, measTotal []byte
	valKey          []byte // " value=", " count=" ...: the field of a plain sample
	// measID and measTotalID are the state's index of meas and measTotal
	// (traefik schema, counter, histogram and summary families).
	measID, measTotalID uint32
}

// nameRef is a label name, its escaped text (",name=") and, once a
// stateful series needed it, its index in the state's names.
type nameRef struct {
	name  string
	text  []byte
	id    uint32
	hasID bool
}

// maxFamilies bounds the family cache against pages that invent names.
const maxFamilies = 10000

// startFamily finds or works out what every sample of s's family shares.
func (c *Converter) startFamily(s *Sample) {
	c.fam = append(c.fam[:0], s.Family...)
	if fi := c.fams[string(s.Family)]; fi != nil && fi.typ == s.Type {
		c.fi = fi
		return
	}
	name := string(s.Family)
	fi := &familyInfo{typ: s.Type, start: name == processStartFamily, ok: c.included(name)}
	switch c.schema {
	case schemaTraefik:
		fi.meas, _ = appendEscaped(nil, []byte(traefikMeasurement(name)), &measClass)
		if s.Type == Counter {
			fi.measTotal, _ = appendEscaped(nil, []byte(traefikMeasurement(name+"_total")), &measClass)
			fi.valKey = []byte(" count=")
			fi.measTotalID = c.st.intern(fi.measTotal)
		} else {
			fi.valKey = []byte(" value=")
		}
		if s.Type == Counter || s.Type == Histogram || s.Type == Summary {
			fi.measID = c.st.intern(fi.meas)
		}
	case schemaTelegraf:
		fi.meas, _ = appendEscaped(nil, s.Family, &measClass)
		switch s.Type {
		case Counter:
			fi.valKey = []byte(" counter=")
		case Gauge:
			fi.valKey = []byte(" gauge=")
		default:
			fi.valKey = []byte(" value=")
		}
	case schemaPrometheus:
		fi.valKey = []byte(" value=")
	}
	if len(c.fams) >= maxFamilies {
		clear(c.fams)
	}
	c.fams[name] = fi
	c.fi = fi
}

func (c *Converter) included(family string) bool {
	if len(c.include) > 0 {
		in := false
		for _, p := range c.include {
			if ok, _ := path.Match(p, family); ok {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	for _, p := range c.exclude {
		if ok, _ := path.Match(p, family); ok {
			return false
		}
	}
	return true
}

// role says what s is within its family.
func (c *Converter) role(s *Sample) sampleRole {
	if len(s.Name) <= len(s.Family) {
		return roleValue
	}
	suffix := string(s.Name[len(s.Family):])
	switch c.fi.typ {
	case Histogram:
		switch suffix {
		case "_bucket":
			return roleBucket
		case "_sum":
			return roleSum
		case "_count":
			return roleCount
		case "_created":
			return roleCreated
		}
	case Summary:
		switch suffix {
		case "_sum":
			return roleSum
		case "_count":
			return roleCount
		case "_created":
			return roleCreated
		}
	case Counter:
		if suffix == "_created" {
			return roleCreated
		}
	}
	return roleValue
}

func (c *Converter) skip(stats *ConvertStats, r SkipReason) {
	stats.Skipped[r]++
}

// sample converts one sample of an included family.
func (c *Converter) sample(s *Sample, out []byte, stats *ConvertStats) []byte {
	v := s.Value
	if math.IsNaN(v) {
		c.skip(stats, SkipNaN)
		return out
	}
	if math.IsInf(v, 0) {
		c.skip(stats, SkipInf)
		return out
	}
	if c.schema == schemaPrometheus {
		c.key, _ = appendEscaped(c.key[:0], s.Name, &measClass)
		if _, r := c.appendTags(s.Labels, "", false); r >= 0 {
			c.skip(stats, r)
			return out
		}
		stats.Points++
		return c.appendValueLine(out, v)
	}

	role := c.role(s)
	drop := ""
	switch {
	case role == roleCreated:
		stats.Ignored++
		return out
	case role == roleBucket:
		drop = "le"
	case role == roleValue && c.fi.typ == Summary:
		role = roleQuantile
		drop = "quantile"
	}
	total := c.schema == schemaTraefik && c.fi.typ == Counter && len(s.Name) > len(s.Family)
	stateful := c.schema == schemaTraefik && c.fi.typ != Gauge && c.fi.typ != Untyped
	var (
		dropped []byte
		same    bool
	)
	if c.tagsFor == c.fi && !total && !c.noTagsCache {
		if s.Series != 0 && s.Series == c.tagsSeries {
			dropped, same = c.sameSeries(s.Labels, drop)
		}
		if !same {
			dropped, same = c.sameTags(s.Labels, drop)
		}
	}
	if same {
		// c.key and c.skey hold this tag set already.
		c.empty += c.tagsEmpty
	} else {
		c.tagsFor = nil
		var r SkipReason
		if dropped, r = c.writeTags(s, drop, total, stateful); r >= 0 {
			c.skip(stats, r)
			return out
		}
	}
	var bound boundEntry
	if drop != "" {
		var ok bool
		if bound, ok = c.bound(dropped); !ok {
			c.skip(stats, SkipInvalidLabel)
			return out
		}
	}
	if c.schema == schemaTelegraf {
		return c.telegraf(role, bound, v, out, stats)
	}
	return c.traefik(role, bound.val, v, out, stats)
}

// writeTags puts the series key of s in c.key (and the state's key in
// c.skey when stateful), returns the value of the label drop, and
// remembers the labels of a histogram or summary series so that its next
// samples reuse both keys (see sameTags). The reason is -1 when the tags
// could be written.
func (c *Converter) writeTags(s *Sample, drop string, total, stateful bool) (dropped []byte, reason SkipReason) {
	if total {
		c.key = append(c.key[:0], c.fi.measTotal...)
	} else {
		c.key = append(c.key[:0], c.fi.meas...)
	}
	if stateful {
		id := c.fi.measID
		if total {
			id = c.fi.measTotalID
		}
		c.skey = binary.AppendUvarint(c.skey[:0], uint64(id))
	}
	empty := c.empty
	if dropped, reason = c.appendTags(s.Labels, drop, stateful); reason >= 0 {
		return nil, reason
	}
	if c.fi.typ == Histogram || c.fi.typ == Summary {
		// The buckets, sum and count of a series come one after the other
		// with the same labels but le: remember them, keep the keys.
		c.tagsFor, c.tagsEmpty, c.tagsSeries = c.fi, c.empty-empty, s.Series
		c.tagsBuf = c.tagsBuf[:0]
		c.tagsLabels = c.tagsLabels[:0]
		for i := range s.Labels {
			l := &s.Labels[i]
			if drop != "" && string(l.Name) == drop {
				continue
			}
			n := len(c.tagsBuf)
			c.tagsBuf = append(c.tagsBuf, l.Name...)
			c.tagsBuf = append(c.tagsBuf, l.Value...)
			c.tagsLabels = append(c.tagsLabels, tagsLabel{n, len(l.Name), len(l.Value)})
		}
	}
	return dropped, -1
}

// tagsLabel is one label of the remembered tag set, in c.tagsBuf.
type tagsLabel struct{ off, name, value int }

// sameTags reports whether labels, less the label named drop, are the
// labels remembered by writeTags, in the same order, and returns the
// dropped label's value. Comparing bytes costs a fraction of writing the
// tags again: escaping, sorting, merging the static tags and building the
// state's key.
func (c *Converter) sameTags(labels []Label, drop string) (dropped []byte, same bool) {
	k := 0
	for i := range labels {
		l := &labels[i]
		if drop != "" && string(l.Name) == drop {
			dropped = l.Value
			continue
		}
		if k == len(c.tagsLabels) {
			return nil, false
		}
		t := c.tagsLabels[k]
		if string(l.Name) != string(c.tagsBuf[t.off:t.off+t.name]) ||
			string(l.Value) != string(c.tagsBuf[t.off+t.name:t.off+t.name+t.value]) {
			return nil, false
		}
		k++
	}
	if k != len(c.tagsLabels) || drop != "" && dropped == nil {
		return nil, false
	}
	return dropped, true
}

// sameSeries is sameTags for a sample of the metric whose labels are
// remembered (the same Sample.Series): they are those labels, the label
// named drop last, so only the count and that last name need a look. It
// says false where that does not hold, for sameTags to decide.
func (c *Converter) sameSeries(labels []Label, drop string) (dropped []byte, same bool) {
	n := len(labels)
	if drop == "" {
		return nil, n == len(c.tagsLabels)
	}
	if n != len(c.tagsLabels)+1 || string(labels[n-1].Name) != drop {
		return nil, false
	}
	return labels[n-1].Value, true
}

// appendTags appends the sorted tag set of labels and the static tags to
// c.key, leaving out the label named drop, whose value it returns, and
// labels with an empty value, which it counts; with stateful, it also
// appends the labels to the state's key in c.skey. The reason is -1 when
// the tags could be written.
func (c *Converter) appendTags(labels []Label, drop string, stateful bool) (dropped []byte, reason SkipReason) {
	// ls indexes labels: no pointers to copy, so no write barriers.
	ls := c.labels[:0]
	sorted := true
	empty := 0
	for i := range labels {
		l := &labels[i]
		if drop != "" && string(l.Name) == drop {
			dropped = l.Value
			continue
		}
		if len(l.Value) == 0 {
			empty++
			continue
		}
		if len(l.Name) == 0 {
			// The parser never yields one; line protocol has no empty tag key.
			return nil, SkipInvalidLabel
		}
		// Names are not empty: comparing the first bytes settles most pairs
		// without a call.
		if n := len(ls); n > 0 {
			if p := labels[ls[n-1]].Name; l.Name[0] < p[0] || l.Name[0] == p[0] && string(l.Name) <= string(p) {
				sorted = false
			}
		}
		ls = append(ls, int32(i))
	}
	c.labels = ls
	if drop != "" && dropped == nil {
		return nil, SkipInvalidLabel
	}
	if !sorted {
		// Pages come sorted but for le, which goes last: an insertion
		// sort moves it in one pass. It also catches a name given twice.
		for i := 1; i < len(ls); i++ {
			for j := i; j > 0 && string(labels[ls[j]].Name) < string(labels[ls[j-1]].Name); j-- {
				ls[j], ls[j-1] = ls[j-1], ls[j]
			}
		}
		for i := 1; i < len(ls); i++ {
			if string(labels[ls[i]].Name) == string(labels[ls[i-1]].Name) {
				return nil, SkipInvalidLabel
			}
		}
	}
	st := c.static
	key := c.key
	i := 0
	var ok bool
	for j, li := range ls {
		l := &labels[li]
		for i < len(st) && (st[i].key[0] < l.Name[0] || st[i].key[0] == l.Name[0] && string(st[i].key) < string(l.Name)) {
			key = append(key, st[i].text...)
			i++
		}
		if i < len(st) && st[i].key[0] == l.Name[0] && string(st[i].key) == string(l.Name) {
			i++ // the scraped label wins
		}
		n := c.name(j, l.Name)
		if n == nil {
			c.key = key
			return nil, SkipInvalidLabel
		}
		key = append(key, n.text...)
		if key, ok = appendEscaped(key, l.Value, &tagClass); !ok {
			c.key = key
			return nil, SkipInvalidLabel
		}
		if stateful {
			if !n.hasID {
				n.id, n.hasID = c.st.intern(l.Name), true
			}
			c.skey = binary.AppendUvarint(c.skey, uint64(n.id))
			c.skey = binary.AppendUvarint(c.skey, uint64(len(l.Value)))
			c.skey = append(c.skey, l.Value...)
		}
	}
	for ; i < len(st); i++ {
		key = append(key, st[i].text...)
	}
	c.key = key
	c.empty += empty
	return dropped, -1
}

// name returns what is kept of the label name at position i of the sorted
// labels: series after series, positions keep their names, so the name is
// escaped (and looked up in the state) once, not per sample. It returns nil
// for a name that cannot be written.
func (c *Converter) name(i int, name []byte) *nameRef {
	if i < len(c.names) && c.names[i].name == string(name) {
		return c.names[i]
	}
	n := c.nameTab[string(name)]
	if n == nil {
		text, ok := appendEscaped([]byte{','}, name, &tagClass)
		if !ok {
			return nil
		}
		if len(c.nameTab) >= maxFamilies { // a page that invents names
			clear(c.nameTab)
			c.names = c.names[:0]
		}
		n = &nameRef{name: string(name), text: append(text, '=')}
		c.nameTab[n.name] = n
	}
	if i >= len(c.names) {
		c.names = append(c.names, make([]*nameRef, i+1-len(c.names))...)
	}
	c.names[i] = n
	return n
}

// stateReplaced forgets what refers to the state's indices, after the
// state was replaced or compacted.
func (c *Converter) stateReplaced() {
	clear(c.fams)
	c.tagsFor = nil
	for _, n := range c.nameTab {
		n.hasID = false
	}
	c.lastID, c.expect = -1, 0
	c.endPending()
}

// bound parses an le or quantile label value, remembering the last few so
// that the same bounds on every series cost a comparison, not a parse.
func (c *Converter) bound(raw []byte) (boundEntry, bool) {
	for i := range c.bounds {
		if c.bounds[i].raw == string(raw) {
			return c.bounds[i], true
		}
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(v) {
		return boundEntry{}, false
	}
	if len(c.bounds) >= 64 {
		c.bounds = c.bounds[:0]
	}
	e := boundEntry{raw: string(raw), val: v, field: strconv.FormatFloat(v, 'g', -1, 64)}
	c.bounds = append(c.bounds, e)
	return e, true
}

// endFamily writes what waited for the end of the family.
func (c *Converter) endFamily(out []byte, stats *ConvertStats) []byte {
	out = c.closeOpen(out)
	for i := range c.pending {
		out = c.flush(&c.pending[i], out, stats)
	}
	c.endPending()
	return out
}

// endPending empties the pending list, unwritten or written.
func (c *Converter) endPending() {
	c.pending = c.pending[:0]
	c.pendKeys = c.pendKeys[:0]
	c.famGen++
	if c.famGen >= 1<<31 {
		for i := range c.st.hists {
			c.st.hists[i].gen = 0
		}
		c.famGen = 1
	}
}
