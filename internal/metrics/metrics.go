// Package metrics is the bridge's own registry of self-metrics: counters,
// gauges and histograms, with or without labels, that /metrics serves in the
// Prometheus text format (version 0.0.4) and the self-metrics writer reads as
// plain values.
//
// It does what the bridge needs of client_golang and no more. client_golang
// and the protobuf runtime it links cost the bridge about 2.5 MB of
// executable, which stays mapped and counts in its resident memory, and
// 0.6 MiB of heap at start (BENCHMARKS.md, "Self-metrics without
// client_golang"). Every value written here is checked against what
// client_golang writes for the same operations, read back with Prometheus's
// own parser (metrics_test.go).
package metrics

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Kind is the type of a family, as the text format's TYPE line names it.
type Kind uint8

const (
	KindCounter Kind = iota
	KindGauge
	KindHistogram
	KindSummary
)

func (k Kind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindGauge:
		return "gauge"
	case KindHistogram:
		return "histogram"
	case KindSummary:
		return "summary"
	}
	return "untyped"
}

// Label is one label pair of a metric.
type Label struct{ Name, Value string }

// Bucket is one histogram bucket: how many observations were at most
// UpperBound (cumulative). The +Inf bucket is the metric's Count.
type Bucket struct {
	UpperBound float64
	Count      uint64
}

// Quantile is one quantile of a summary.
type Quantile struct{ Quantile, Value float64 }

// Metric is one series of a family at the time it was gathered.
type Metric struct {
	Labels []Label // sorted by name

	Value float64 // counter, gauge

	Count     uint64 // histogram, summary
	Sum       float64
	Buckets   []Bucket   // histogram
	Quantiles []Quantile // summary
}

// Family is every series of one metric name.
type Family struct {
	Name    string
	Help    string
	Kind    Kind
	Metrics []Metric
}

// Collector is anything a Registry reads: the families it will emit, by name,
// and their current values.
type Collector interface {
	Names() []string
	Collect(emit func(Family))
}

// Registry holds collectors; it is read by Gather and served by ServeHTTP.
type Registry struct {
	mu    sync.Mutex
	cs    []Collector
	names map[string]bool
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{names: map[string]bool{}} }

// Register adds collectors. A family name that is already registered is an
// error that names it, and then none of cs is added.
func (r *Registry) Register(cs ...Collector) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, c := range cs {
		for _, n := range c.Names() {
			if !validName(n) {
				return fmt.Errorf("metric name %q is not valid", n)
			}
			if r.names[n] || slices.Contains(names, n) {
				return fmt.Errorf("metric %s is already registered", n)
			}
			names = append(names, n)
		}
	}
	for _, n := range names {
		r.names[n] = true
	}
	r.cs = append(r.cs, cs...)
	return nil
}

// MustRegister is Register for collectors built by the program itself,
// where a clash is a bug.
func (r *Registry) MustRegister(cs ...Collector) {
	if err := r.Register(cs...); err != nil {
		panic(err)
	}
}

// Gather returns every family, sorted by name, its metrics sorted by their
// label values. Families without a metric are left out.
func (r *Registry) Gather() []Family {
	r.mu.Lock()
	cs := slices.Clone(r.cs)
	r.mu.Unlock()
	var fams []Family
	for _, c := range cs {
		c.Collect(func(f Family) {
			if len(f.Metrics) > 0 {
				fams = append(fams, f)
			}
		})
	}
	slices.SortFunc(fams, func(a, b Family) int { return strings.Compare(a.Name, b.Name) })
	for _, f := range fams {
		slices.SortFunc(f.Metrics, func(a, b Metric) int { return compareLabels(a.Labels, b.Labels) })
	}
	return fams
}

func compareLabels(a, b []Label) int {
	for i := range min(len(a), len(b)) {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// validName says whether s is a metric name of the text format; label names
// are the same without the colon.
func validName(s string) bool { return validIdent(s, true) }

func validLabelName(s string) bool { return validIdent(s, false) && !strings.HasPrefix(s, "__") }

func validIdent(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || colon && c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// checkLabels panics on a label name the text format cannot carry or one
// given twice: metrics are built by the program, so that is a bug.
func checkLabels(metric string, names []string, reserved string) {
	for i, l := range names {
		if !validLabelName(l) || l == reserved || slices.Contains(names[:i], l) {
			panic(fmt.Sprintf("metric %s: label name %q is not valid or given twice", metric, l))
		}
	}
}

// atomicFloat is a float64 updated without a lock.
type atomicFloat struct{ bits atomic.Uint64 }

func (f *atomicFloat) load() float64   { return math.Float64frombits(f.bits.Load()) }
func (f *atomicFloat) store(v float64) { f.bits.Store(math.Float64bits(v)) }
func (f *atomicFloat) add(v float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Counter only goes up.
type Counter struct {
	family *Family // name, help; nil for a child of a CounterVec
	v      atomicFloat
}

// NewCounter returns a counter without labels.
func NewCounter(name, help string) *Counter {
	return &Counter{family: &Family{Name: name, Help: help, Kind: KindCounter}}
}

func (c *Counter) Inc() { c.v.add(1) }

// Add adds v; a negative v is ignored, as a counter never goes down.
func (c *Counter) Add(v float64) {
	if v > 0 {
		c.v.add(v)
	}
}

// Value is the counter's current value.
func (c *Counter) Value() float64 { return c.v.load() }

func (c *Counter) Names() []string { return []string{c.family.Name} }
func (c *Counter) Collect(emit func(Family)) {
	f := *c.family
	f.Metrics = []Metric{{Value: c.Value()}}
	emit(f)
}

// Gauge is a value that is set.
type Gauge struct {
	family *Family
	v      atomicFloat
}

// NewGauge returns a gauge without labels.
func NewGauge(name, help string) *Gauge {
	return &Gauge{family: &Family{Name: name, Help: help, Kind: KindGauge}}
}

func (g *Gauge) Set(v float64) { g.v.store(v) }
func (g *Gauge) Add(v float64) { g.v.add(v) }

// Value is the gauge's current value.
func (g *Gauge) Value() float64 { return g.v.load() }

func (g *Gauge) Names() []string { return []string{g.family.Name} }
func (g *Gauge) Collect(emit func(Family)) {
	f := *g.family
	f.Metrics = []Metric{{Value: g.Value()}}
	emit(f)
}

// Histogram counts observations in buckets. Observations are rare in the
// bridge (one a scrape or a write), so a mutex keeps count, sum and buckets
// consistent with each other at little cost.
type Histogram struct {
	family *Family
	upper  []float64 // sorted, without +Inf

	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	count  uint64
	sum    float64
}

// NewHistogram returns a histogram without labels. buckets are the upper
// bounds, in increasing order; +Inf is implied.
func NewHistogram(name, help string, buckets []float64) *Histogram {
	h := newHistogram(buckets)
	h.family = &Family{Name: name, Help: help, Kind: KindHistogram}
	return h
}

func newHistogram(buckets []float64) *Histogram {
	upper := slices.Clone(buckets)
	if n := len(upper); n > 0 && math.IsInf(upper[n-1], 1) {
		upper = upper[:n-1]
	}
	for i := 1; i < len(upper); i++ {
		if upper[i] <= upper[i-1] {
			panic(fmt.Sprintf("histogram buckets not in increasing order: %v", buckets))
		}
	}
	return &Histogram{upper: upper, counts: make([]uint64, len(upper)+1)}
}

// Observe counts v in the first bucket whose upper bound is at least v;
// NaN only in +Inf, as no bound is at least NaN.
func (h *Histogram) Observe(v float64) {
	i := len(h.upper)
	if !math.IsNaN(v) {
		i, _ = slices.BinarySearch(h.upper, v)
	}
	h.mu.Lock()
	h.counts[i]++
	h.count++
	h.sum += v
	h.mu.Unlock()
}

func (h *Histogram) metric(labels []Label) Metric {
	m := Metric{Labels: labels, Buckets: make([]Bucket, len(h.upper))}
	h.mu.Lock()
	var cum uint64
	for i, ub := range h.upper {
		cum += h.counts[i]
		m.Buckets[i] = Bucket{UpperBound: ub, Count: cum}
	}
	m.Count, m.Sum = h.count, h.sum
	h.mu.Unlock()
	return m
}

func (h *Histogram) Names() []string { return []string{h.family.Name} }
func (h *Histogram) Collect(emit func(Family)) {
	f := *h.family
	f.Metrics = []Metric{h.metric(nil)}
	emit(f)
}

// vec is a family of metrics told apart by label values.
type vec[T any] struct {
	family Family
	labels []string // in the order WithLabelValues takes them
	order  []int    // label indexes sorted by name
	make   func() *T

	mu       sync.Mutex
	children map[string]*child[T]
}

type child[T any] struct {
	labels []Label // sorted by name
	m      *T
}

func newVec[T any](name, help string, kind Kind, labels []string, mk func() *T) *vec[T] {
	reserved := ""
	if kind == KindHistogram {
		reserved = "le"
	}
	checkLabels(name, labels, reserved)
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	return &vec[T]{
		family: Family{Name: name, Help: help, Kind: kind}, labels: slices.Clone(labels), order: order,
		make: mk, children: map[string]*child[T]{},
	}
}

// with returns the child for these label values, made on first use. The
// number of values must be the number of label names.
func (v *vec[T]) with(values ...string) *T {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("metric %s: %d label values for %d labels", v.family.Name, len(values), len(v.labels)))
	}
	// Each value with its length before it: no two lists of values share a
	// key, whatever bytes they hold.
	var buf [64]byte
	kb := buf[:0]
	for _, s := range values {
		kb = binary.AppendUvarint(kb, uint64(len(s)))
		kb = append(kb, s...)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if c, ok := v.children[string(kb)]; ok { // no copy of kb
		return c.m
	}
	key := string(kb)
	c := &child[T]{labels: make([]Label, len(values)), m: v.make()}
	for i, j := range v.order {
		c.labels[i] = Label{v.labels[j], values[j]}
	}
	v.children[key] = c
	return c.m
}

// deleteLabel removes every child whose label name has this value.
func (v *vec[T]) deleteLabel(name, value string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for k, c := range v.children {
		if slices.Contains(c.labels, Label{name, value}) {
			delete(v.children, k)
			n++
		}
	}
	return n
}

func (v *vec[T]) Names() []string { return []string{v.family.Name} }

func (v *vec[T]) collect(emit func(Family), metric func(labels []Label, m *T) Metric) {
	f := v.family
	v.mu.Lock()
	f.Metrics = make([]Metric, 0, len(v.children))
	for _, c := range v.children {
		f.Metrics = append(f.Metrics, metric(c.labels, c.m))
	}
	v.mu.Unlock()
	emit(f)
}

// CounterVec is a counter per combination of label values.
type CounterVec struct{ *vec[Counter] }

func NewCounterVec(name, help string, labels ...string) CounterVec {
	return CounterVec{newVec(name, help, KindCounter, labels, func() *Counter { return &Counter{} })}
}

// WithLabelValues returns the counter for these values, in the order of the
// label names given to NewCounterVec.
func (v CounterVec) WithLabelValues(values ...string) *Counter { return v.with(values...) }

// DeleteLabel removes every counter whose label name has this value; it
// returns how many.
func (v CounterVec) DeleteLabel(name, value string) int { return v.deleteLabel(name, value) }

func (v CounterVec) Collect(emit func(Family)) {
	v.collect(emit, func(l []Label, c *Counter) Metric { return Metric{Labels: l, Value: c.Value()} })
}

// GaugeVec is a gauge per combination of label values.
type GaugeVec struct{ *vec[Gauge] }

func NewGaugeVec(name, help string, labels ...string) GaugeVec {
	return GaugeVec{newVec(name, help, KindGauge, labels, func() *Gauge { return &Gauge{} })}
}

func (v GaugeVec) WithLabelValues(values ...string) *Gauge { return v.with(values...) }
func (v GaugeVec) DeleteLabel(name, value string) int      { return v.deleteLabel(name, value) }
func (v GaugeVec) Collect(emit func(Family)) {
	v.collect(emit, func(l []Label, g *Gauge) Metric { return Metric{Labels: l, Value: g.Value()} })
}

// HistogramVec is a histogram per combination of label values, all with the
// same buckets.
type HistogramVec struct{ *vec[Histogram] }

func NewHistogramVec(name, help string, buckets []float64, labels ...string) HistogramVec {
	newHistogram(buckets) // check the buckets now, not at first use
	return HistogramVec{newVec(name, help, KindHistogram, labels, func() *Histogram { return newHistogram(buckets) })}
}

func (v HistogramVec) WithLabelValues(values ...string) *Histogram { return v.with(values...) }
func (v HistogramVec) DeleteLabel(name, value string) int          { return v.deleteLabel(name, value) }
func (v HistogramVec) Collect(emit func(Family)) {
	v.collect(emit, func(l []Label, h *Histogram) Metric { return h.metric(l) })
}

// GaugeFunc is a gauge whose value a function gives when it is read, with
// labels fixed at construction.
type GaugeFunc struct {
	family Family
	labels []Label
	f      func() float64
}

func NewGaugeFunc(name, help string, f func() float64, labels ...Label) *GaugeFunc {
	ls := slices.Clone(labels)
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	checkLabels(name, names, "")
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	return &GaugeFunc{family: Family{Name: name, Help: help, Kind: KindGauge}, labels: ls, f: f}
}

func (g *GaugeFunc) Names() []string { return []string{g.family.Name} }
func (g *GaugeFunc) Collect(emit func(Family)) {
	f := g.family
	f.Metrics = []Metric{{Labels: g.labels, Value: g.f()}}
	emit(f)
}
