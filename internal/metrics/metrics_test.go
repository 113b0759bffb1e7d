package metrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// parsedMetric is one series as Prometheus's own text parser read it, with
// every float written out, so that two parses compare with require.Equal
// (NaN included, which reflect.DeepEqual on the dto would call unequal) and a
// difference shows as readable text.
type parsedMetric struct {
	Labels    []string // name=value, in the order of the text
	Value     string   // counter, gauge, untyped
	Count     uint64   // histogram, summary
	Sum       string
	Buckets   []string // upper bound:cumulative count, +Inf included
	Quantiles []string // quantile:value
}

type parsedFamily struct {
	Name, Help, Type string
	Metrics          []parsedMetric
}

// fmtFloat writes v exactly. -0 is written as 0: client_golang writes -0 as
// "0" and we write "-0"; both are the same number to Prometheus.
func fmtFloat(v float64) string {
	if v == 0 {
		v = 0
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// parseText reads text with expfmt, the parser Prometheus scrapes with, and
// returns its families sorted by name. A parse error fails the test: text we
// write must be text Prometheus reads.
func parseText(t require.TestingT, text []byte) []parsedFamily {
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	require.NoError(t, err, "expfmt cannot parse:\n%s", text)
	fams := make([]parsedFamily, 0, len(mfs))
	for _, mf := range mfs {
		f := parsedFamily{Name: mf.GetName(), Help: mf.GetHelp(), Type: mf.GetType().String()}
		for _, m := range mf.GetMetric() {
			var pm parsedMetric
			for _, l := range m.GetLabel() {
				pm.Labels = append(pm.Labels, l.GetName()+"="+l.GetValue())
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				pm.Value = fmtFloat(m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				pm.Value = fmtFloat(m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				pm.Value = fmtFloat(m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				pm.Count, pm.Sum = h.GetSampleCount(), fmtFloat(h.GetSampleSum())
				for _, b := range h.GetBucket() {
					pm.Buckets = append(pm.Buckets, fmtFloat(b.GetUpperBound())+":"+strconv.FormatUint(b.GetCumulativeCount(), 10))
				}
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				pm.Count, pm.Sum = s.GetSampleCount(), fmtFloat(s.GetSampleSum())
				for _, q := range s.GetQuantile() {
					pm.Quantiles = append(pm.Quantiles, fmtFloat(q.GetQuantile())+":"+fmtFloat(q.GetValue()))
				}
			}
			f.Metrics = append(f.Metrics, pm)
		}
		fams = append(fams, f)
	}
	sort.Slice(fams, func(i, j int) bool { return fams[i].Name < fams[j].Name })
	return fams
}

// gatherText renders our registry as /metrics serves it.
func gatherText(r *Registry) []byte { return AppendText(nil, r.Gather()) }

// theirText renders a client_golang registry with expfmt's text encoder,
// which is what promhttp serves for the 0.0.4 text format.
func theirText(t require.TestingT, g prometheus.Gatherer) []byte {
	mfs, err := g.Gather()
	require.NoError(t, err)
	var b bytes.Buffer
	for _, mf := range mfs {
		_, err := expfmt.MetricFamilyToText(&b, mf)
		require.NoError(t, err)
	}
	return b.Bytes()
}

// twin applies every operation to one of our metrics and to the
// client_golang metric it replaces, each in its own registry.
type twin struct {
	t      require.TestingT
	ours   *Registry
	theirs *prometheus.Registry
}

func newTwin(t require.TestingT) *twin {
	return &twin{t: t, ours: NewRegistry(), theirs: prometheus.NewRegistry()}
}

func (w *twin) register(o Collector, p prometheus.Collector) {
	require.NoError(w.t, w.ours.Register(o))
	require.NoError(w.t, w.theirs.Register(p))
}

// requireSame renders both registries, parses both texts with expfmt and
// requires the same families.
func (w *twin) requireSame() {
	want, got := theirText(w.t, w.theirs), gatherText(w.ours)
	require.Equal(w.t, parseText(w.t, want), parseText(w.t, got),
		"client_golang wrote:\n%s\nwe wrote:\n%s", want, got)
}

type twinCounter struct {
	o *Counter
	p prometheus.Counter
}

func (c twinCounter) Inc() { c.o.Inc(); c.p.Inc() }

// Add replays a negative v on ours only: ours ignores it, client_golang
// panics, so the two agree when ours leaves the value alone.
func (c twinCounter) Add(v float64) {
	c.o.Add(v)
	if v >= 0 {
		c.p.Add(v)
	}
}

type twinGauge struct {
	o *Gauge
	p prometheus.Gauge
}

func (g twinGauge) Set(v float64) { g.o.Set(v); g.p.Set(v) }
func (g twinGauge) Add(v float64) { g.o.Add(v); g.p.Add(v) }

type twinHistogram struct {
	o *Histogram
	p prometheus.Observer
}

func (h twinHistogram) Observe(v float64) { h.o.Observe(v); h.p.Observe(v) }

func (w *twin) counter(name, help string) twinCounter {
	c := twinCounter{NewCounter(name, help), prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})}
	w.register(c.o, c.p)
	return c
}

func (w *twin) gauge(name, help string) twinGauge {
	g := twinGauge{NewGauge(name, help), prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})}
	w.register(g.o, g.p)
	return g
}

func (w *twin) histogram(name, help string, buckets []float64) twinHistogram {
	h := twinHistogram{NewHistogram(name, help, buckets),
		prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})}
	w.register(h.o, h.p.(prometheus.Histogram))
	return h
}

type twinCounterVec struct {
	w *twin
	o CounterVec
	p *prometheus.CounterVec
}

func (w *twin) counterVec(name, help string, labels ...string) twinCounterVec {
	v := twinCounterVec{w, NewCounterVec(name, help, labels...), prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)}
	w.register(v.o, v.p)
	return v
}

func (v twinCounterVec) with(values ...string) twinCounter {
	return twinCounter{v.o.WithLabelValues(values...), v.p.WithLabelValues(values...)}
}

// deleteLabel is DeleteLabel against DeletePartialMatch with one label,
// which is what it replaces; both must remove the same number of children.
func (v twinCounterVec) deleteLabel(name, value string) int {
	n := v.o.DeleteLabel(name, value)
	require.Equal(v.w.t, v.p.DeletePartialMatch(prometheus.Labels{name: value}), n, "DeleteLabel(%q, %q)", name, value)
	return n
}

type twinGaugeVec struct {
	w *twin
	o GaugeVec
	p *prometheus.GaugeVec
}

func (w *twin) gaugeVec(name, help string, labels ...string) twinGaugeVec {
	v := twinGaugeVec{w, NewGaugeVec(name, help, labels...), prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)}
	w.register(v.o, v.p)
	return v
}

func (v twinGaugeVec) with(values ...string) twinGauge {
	return twinGauge{v.o.WithLabelValues(values...), v.p.WithLabelValues(values...)}
}

func (v twinGaugeVec) deleteLabel(name, value string) int {
	n := v.o.DeleteLabel(name, value)
	require.Equal(v.w.t, v.p.DeletePartialMatch(prometheus.Labels{name: value}), n, "DeleteLabel(%q, %q)", name, value)
	return n
}

type twinHistogramVec struct {
	w *twin
	o HistogramVec
	p *prometheus.HistogramVec
}

func (w *twin) histogramVec(name, help string, buckets []float64, labels ...string) twinHistogramVec {
	v := twinHistogramVec{w, NewHistogramVec(name, help, buckets, labels...),
		prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)}
	w.register(v.o, v.p)
	return v
}

func (v twinHistogramVec) with(values ...string) twinHistogram {
	return twinHistogram{v.o.WithLabelValues(values...), v.p.WithLabelValues(values...)}
}

func (v twinHistogramVec) deleteLabel(name, value string) int {
	n := v.o.DeleteLabel(name, value)
	require.Equal(v.w.t, v.p.DeletePartialMatch(prometheus.Labels{name: value}), n, "DeleteLabel(%q, %q)", name, value)
	return n
}

// awkward are label values the text format must escape or carry as they are.
var awkward = []string{
	`back\slash`, `trailing\`, `say "hi"`, "two\nlines", `literal \n`, "héllo wörld", "日本語 🚀", "", " ", "a,b=c}",
}

// TestMatchesClientGolang applies the same operations to our registry and to
// client_golang's and requires that Prometheus's parser reads the same
// families from both texts: names, help, types, label sets, values, bucket
// bounds and counts, sums and counts.
func TestMatchesClientGolang(t *testing.T) {
	buckets := []float64{0.1, 0.5, 1, 5}
	tests := []struct {
		name string
		ops  func(w *twin)
	}{
		{"counter Inc, Add and a negative Add ignored", func(w *twin) {
			c := w.counter("c_total", "A counter.")
			c.Inc()
			c.Add(2.5)
			c.Add(-3) // ours must ignore it, as client_golang never sees it
			c.Add(0)
			c.Inc()
		}},
		{"counter with fractional adds", func(w *twin) {
			// Only non-integers: client_golang keeps integer adds apart
			// from fractional ones, so a mix could round differently with
			// values like 0.1 although both are right.
			c := w.counter("frac_total", "Fractions.")
			for range 10 {
				c.Add(0.1)
			}
			c.Add(1e-9)
		}},
		{"counter never touched is 0", func(w *twin) {
			w.counter("untouched_total", "Never incremented.")
		}},
		{"gauge Set and Add", func(w *twin) {
			g := w.gauge("g", "A gauge.")
			g.Set(3)
			g.Add(-1.5)
			g.Add(0.1)
			g.Set(-7.25)
			g.Add(2)
			big := w.gauge("big", "Large.")
			big.Set(1.5e300)
			small := w.gauge("small", "Small.")
			small.Set(-2.5e-300)
			integer := w.gauge("integer", "An integer formatting may turn into an exponent.")
			integer.Set(123456789012345678)
		}},
		{"gauge at infinities and NaN", func(w *twin) {
			w.gauge("pinf", "+Inf.").Set(math.Inf(1))
			w.gauge("ninf", "-Inf.").Set(math.Inf(-1))
			w.gauge("nan", "NaN.").Set(math.NaN())
		}},
		{"histogram on, below, above bounds, negative and many", func(w *twin) {
			h := w.histogram("h_seconds", "A histogram.", buckets)
			for _, v := range buckets {
				h.Observe(v) // exactly on a bound: counted in that bucket (le)
			}
			h.Observe(0.05) // below the first bound
			h.Observe(7)    // above the last: only +Inf
			h.Observe(-3)   // negative: the first bucket
			h.Observe(0)
			for i := range 1000 {
				h.Observe(float64(i%13) * 0.47)
			}
		}},
		{"histogram never observed", func(w *twin) {
			w.histogram("empty_seconds", "Nothing observed.", buckets)
		}},
		{"histogram with +Inf given as the last bucket", func(w *twin) {
			// client_golang drops a trailing +Inf; so must we, or the +Inf
			// bucket would be written twice.
			h := w.histogram("inf_seconds", "Explicit +Inf.", []float64{1, 2, math.Inf(1)})
			for _, v := range []float64{0.5, 1, 2, 3, math.Inf(1)} {
				h.Observe(v)
			}
		}},
		{"histogram with one bucket and extreme observations", func(w *twin) {
			h := w.histogram("one_bucket", "One bound.", []float64{0})
			h.Observe(math.Inf(-1))
			h.Observe(-math.MaxFloat64)
			h.Observe(math.SmallestNonzeroFloat64)
			h.Observe(0)
		}},
		{"histogram observing NaN: only +Inf counts it", func(w *twin) {
			h := w.histogram("nan_seconds", "NaN observed.", []float64{1, 2})
			h.Observe(math.NaN())
			h.Observe(1.5)
		}},
		{"histogram with negative bounds", func(w *twin) {
			h := w.histogram("neg", "Negative bounds.", []float64{-10, -1, 0, 1})
			for _, v := range []float64{-11, -10, -5, -1, -0.5, 0, 0.5, 1, 2} {
				h.Observe(v)
			}
		}},
		{"vecs with 0, 1, 2 and 3 labels in non-sorted order", func(w *twin) {
			c0 := w.counterVec("zero_labels_total", "No labels.")
			c0.with().Add(4)
			g1 := w.gaugeVec("one_label", "One label.", "target")
			g1.with("b").Set(2)
			g1.with("a").Set(1)
			h2 := w.histogramVec("two_labels_seconds", "Two labels.", buckets, "target", "code")
			h2.with("t1", "500").Observe(0.3)
			h2.with("t1", "200").Observe(0.1)
			h2.with("t0", "200").Observe(9)
			h2.with("t1", "500").Observe(0.5)
			c3 := w.counterVec("three_labels_total", "Three labels.", "zone", "method", "app")
			c3.with("eu", "GET", "web").Inc()
			c3.with("us", "GET", "api").Add(3)
			c3.with("eu", "POST", "api").Add(0.5)
			c3.with("eu", "GET", "web").Add(2)
		}},
		{"label values with escapes and UTF-8", func(w *twin) {
			c := w.counterVec("escaped_total", "Awkward values.", "v", "w")
			g := w.gaugeVec("escaped", "Awkward values.", "v")
			h := w.histogramVec("escaped_seconds", "Awkward values.", buckets, "v")
			for i, v := range awkward {
				c.with(v, awkward[len(awkward)-1-i]).Add(float64(i + 1))
				g.with(v).Set(float64(-i))
				h.with(v).Observe(float64(i) / 10)
			}
		}},
		{"help with backslash, newline, quote and UTF-8", func(w *twin) {
			help := "C:\\path\\ and\nsecond line \"quoted\" ünïcödé \\n"
			w.counter("help_total", help).Inc()
			w.histogramVec("help_seconds", help, buckets, "l").with("x").Observe(1)
			w.gauge("empty_help", "").Set(1)
		}},
		{"labels named le and quantile on a counter", func(w *twin) {
			// Only a histogram reserves le; client_golang allows it on a
			// counter, and so must we.
			c := w.counterVec("reserved_total", "Names reserved elsewhere.", "quantile", "le")
			c.with("0.5", "1").Inc()
		}},
		{"GaugeFunc with labels", func(w *twin) {
			o := NewGaugeFunc("build_info", "Build.", func() float64 { return 42 }, Label{"version", "v1.2\"3\""}, Label{"go", "go1.26"}, Label{"commit", `a\b`})
			p := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "build_info", Help: "Build.",
				ConstLabels: prometheus.Labels{"version": "v1.2\"3\"", "go": "go1.26", "commit": `a\b`}}, func() float64 { return 42 })
			w.register(o, p)
		}},
		{"DeleteLabel across vecs", func(w *twin) {
			c := w.counterVec("del_total", "Counter.", "target", "code")
			g := w.gaugeVec("del", "Gauge.", "target")
			h := w.histogramVec("del_seconds", "Histogram.", buckets, "code", "target")
			only := w.gaugeVec("del_only", "All its children go.", "target")
			for _, target := range []string{"a", "b", "c"} {
				for _, code := range []string{"200", "500"} {
					c.with(target, code).Inc()
					h.with(code, target).Observe(0.2)
				}
				g.with(target).Set(1)
			}
			only.with("b").Set(5)
			require.Equal(w.t, 2, c.deleteLabel("target", "b"))
			require.Equal(w.t, 1, g.deleteLabel("target", "b"))
			require.Equal(w.t, 2, h.deleteLabel("target", "b"))
			require.Equal(w.t, 1, only.deleteLabel("target", "b")) // family left empty: not written
			require.Equal(w.t, 0, c.deleteLabel("target", "b"))    // already gone
			require.Equal(w.t, 0, g.deleteLabel("target", "missing"))
			require.Equal(w.t, 0, g.deleteLabel("nosuchlabel", "a"))
			require.Equal(w.t, 2, h.deleteLabel("code", "500"))
			// A deleted child made again starts from zero.
			c.with("b", "200").Inc()
		}},
		{"vec with no children left out", func(w *twin) {
			w.counterVec("never_total", "No child.", "l")
			w.histogramVec("never_seconds", "No child.", buckets, "l")
			w.counter("present_total", "Written.").Inc()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTwin(t)
			tt.ops(w)
			w.requireSame()
		})
	}
}

// TestMatchesClientGolangRapid is TestMatchesClientGolang over random
// sequences of operations on random children.
func TestMatchesClientGolangRapid(t *testing.T) {
	// Values are multiples of 1/4 of modest size: every sum of them is exact,
	// so the order in which client_golang adds (integers apart from
	// fractions) cannot make a rounding difference that is no one's bug.
	value := rapid.Custom(func(t *rapid.T) float64 { return float64(rapid.IntRange(-400, 400).Draw(t, "quarters")) / 4 })
	labelValue := rapid.SampledFrom(append([]string{"a", "b"}, awkward[:6]...))
	rapid.Check(t, func(rt *rapid.T) {
		w := newTwin(rt)
		bounds := rapid.SliceOfNDistinct(value, 0, 6, rapid.ID[float64]).Draw(rt, "buckets")
		slices.Sort(bounds)
		if len(bounds) == 0 {
			// client_golang replaces no buckets by DefBuckets; we do not
			// (see TestHistogramWithoutBuckets), so give one bound.
			bounds = []float64{1}
		}
		c := w.counter("c_total", "c")
		g := w.gauge("g", "g")
		h := w.histogram("h", "h", bounds)
		cv := w.counterVec("cv_total", "cv", "b", "a", "c")
		gv := w.gaugeVec("gv", "gv", "z", "y")
		hv := w.histogramVec("hv", "hv", bounds, "k", "a")
		observation := rapid.OneOf(value, rapid.SampledFrom(bounds))
		n := rapid.IntRange(0, 60).Draw(rt, "ops")
		for range n {
			lv := func() string { return labelValue.Draw(rt, "label value") }
			switch op := rapid.IntRange(0, 10).Draw(rt, "op"); op {
			case 0:
				c.Inc()
			case 1:
				c.Add(value.Draw(rt, "v"))
			case 2:
				g.Set(value.Draw(rt, "v"))
			case 3:
				g.Add(value.Draw(rt, "v"))
			case 4:
				h.Observe(observation.Draw(rt, "v"))
			case 5:
				cv.with(lv(), lv(), lv()).Add(value.Draw(rt, "v"))
			case 6:
				cv.with(lv(), lv(), lv()).Inc()
			case 7:
				gv.with(lv(), lv()).Add(value.Draw(rt, "v"))
			case 8:
				hv.with(lv(), lv()).Observe(observation.Draw(rt, "v"))
			case 9:
				cv.deleteLabel(rapid.SampledFrom([]string{"a", "b", "c"}).Draw(rt, "name"), lv())
			case 10:
				if rapid.Bool().Draw(rt, "gauge vec") {
					gv.deleteLabel(rapid.SampledFrom([]string{"y", "z"}).Draw(rt, "name"), lv())
				} else {
					hv.deleteLabel(rapid.SampledFrom([]string{"a", "k"}).Draw(rt, "name"), lv())
				}
			}
		}
		w.requireSame()
	})
}

// TestHistogramWithoutBuckets pins down where we differ from client_golang on
// purpose: no buckets means only the +Inf bucket, not DefBuckets.
func TestHistogramWithoutBuckets(t *testing.T) {
	for _, buckets := range [][]float64{nil, {}, {math.Inf(1)}} {
		t.Run(fmt.Sprint(buckets), func(t *testing.T) {
			h := NewHistogram("h", "h", buckets)
			h.Observe(3)
			h.Observe(-1)
			r := NewRegistry()
			r.MustRegister(h)
			require.Equal(t, []parsedFamily{{Name: "h", Help: "h", Type: "HISTOGRAM", Metrics: []parsedMetric{
				{Count: 2, Sum: "2", Buckets: []string{"+Inf:2"}},
			}}}, parseText(t, gatherText(r)))
		})
	}
}

// funcCollector is a Collector made of functions, to feed Gather families in
// an order of our choosing.
type funcCollector struct {
	names   []string
	collect func(emit func(Family))
}

func (c funcCollector) Names() []string           { return c.names }
func (c funcCollector) Collect(emit func(Family)) { c.collect(emit) }

func labelsOf(f Family) [][]Label {
	var ls [][]Label
	for _, m := range f.Metrics {
		ls = append(ls, m.Labels)
	}
	return ls
}

// TestGather checks the order Gather promises (families by name, metrics by
// labels) and that it leaves out families without a metric.
func TestGather(t *testing.T) {
	t.Run("families sorted by name, empty ones left out", func(t *testing.T) {
		r := NewRegistry()
		r.MustRegister(NewCounter("zeta_total", "z"), NewGauge("alpha", "a"),
			NewCounterVec("empty_total", "no child", "l"),
			NewHistogram("mid", "m", []float64{1}))
		gone := NewGaugeVec("gone", "all deleted", "l")
		gone.WithLabelValues("x").Set(1)
		gone.DeleteLabel("l", "x")
		r.MustRegister(gone)
		r.MustRegister(funcCollector{[]string{"b2", "b1", "b0"}, func(emit func(Family)) {
			emit(Family{Name: "b2", Kind: KindGauge, Metrics: []Metric{{}}})
			emit(Family{Name: "b0", Kind: KindGauge})
			emit(Family{Name: "b1", Kind: KindGauge, Metrics: []Metric{{}}})
		}})
		var names []string
		for _, f := range r.Gather() {
			names = append(names, f.Name)
		}
		require.Equal(t, []string{"alpha", "b1", "b2", "mid", "zeta_total"}, names)
	})
	t.Run("metrics of a vec sorted by labels, labels sorted by name", func(t *testing.T) {
		r := NewRegistry()
		v := NewCounterVec("v_total", "v", "b", "a")
		for _, ba := range [][2]string{{"1", "2"}, {"2", "1"}, {"1", "1"}, {"0", "3"}, {"10", "1"}} {
			v.WithLabelValues(ba[0], ba[1]).Inc()
		}
		r.MustRegister(v)
		fams := r.Gather()
		require.Len(t, fams, 1)
		require.Equal(t, [][]Label{
			{{"a", "1"}, {"b", "1"}},
			{{"a", "1"}, {"b", "10"}},
			{{"a", "1"}, {"b", "2"}},
			{{"a", "2"}, {"b", "1"}},
			{{"a", "3"}, {"b", "0"}},
		}, labelsOf(fams[0]))
	})
	t.Run("metrics a collector emits out of order are sorted", func(t *testing.T) {
		r := NewRegistry()
		r.MustRegister(funcCollector{[]string{"f"}, func(emit func(Family)) {
			emit(Family{Name: "f", Kind: KindGauge, Metrics: []Metric{
				{Labels: []Label{{"x", "2"}}},
				{Labels: []Label{{"x", "1"}, {"y", "1"}}},
				{},
				{Labels: []Label{{"w", "9"}}},
				{Labels: []Label{{"x", "1"}}},
			}})
		}})
		fams := r.Gather()
		require.Len(t, fams, 1)
		require.Equal(t, [][]Label{nil, {{"w", "9"}}, {{"x", "1"}}, {{"x", "1"}, {"y", "1"}}, {{"x", "2"}}}, labelsOf(fams[0]))
	})
	t.Run("GaugeFunc labels sorted by name", func(t *testing.T) {
		r := NewRegistry()
		r.MustRegister(NewGaugeFunc("info", "i", func() float64 { return 1 }, Label{"c", "3"}, Label{"a", "1"}, Label{"b", "2"}))
		fams := r.Gather()
		require.Len(t, fams, 1)
		require.Equal(t, [][]Label{{{"a", "1"}, {"b", "2"}, {"c", "3"}}}, labelsOf(fams[0]))
	})
	t.Run("plain values readable", func(t *testing.T) {
		// The self-metrics writer reads Gather's values, not the text.
		r := NewRegistry()
		c, g, h := NewCounter("c_total", "c"), NewGauge("g", "g"), NewHistogram("h", "h", []float64{1, 2})
		r.MustRegister(c, g, h)
		c.Add(3)
		g.Set(-2)
		h.Observe(1)
		h.Observe(1.5)
		h.Observe(9)
		require.Equal(t, []Family{
			{Name: "c_total", Help: "c", Kind: KindCounter, Metrics: []Metric{{Value: 3}}},
			{Name: "g", Help: "g", Kind: KindGauge, Metrics: []Metric{{Value: -2}}},
			{Name: "h", Help: "h", Kind: KindHistogram, Metrics: []Metric{{Count: 3, Sum: 11.5, Buckets: []Bucket{{1, 1}, {2, 2}}}}},
		}, r.Gather())
		require.Equal(t, 3.0, c.Value())
		require.Equal(t, -2.0, g.Value())
	})
}

// TestRegister checks what Register refuses and that a refused collector
// leaves no trace.
func TestRegister(t *testing.T) {
	tests := []struct {
		name    string
		first   []Collector // registered before, must succeed
		c       Collector
		wantErr string // "" for success
	}{
		{"fresh name", nil, NewCounter("a_total", "a"), ""},
		{"name with colon and underscore", nil, NewGauge("_ns:sub_name1", "g"), ""},
		{"duplicate of a counter", []Collector{NewCounter("a_total", "a")}, NewCounter("a_total", "other help"), "a_total"},
		{"duplicate across kinds", []Collector{NewGauge("x", "a")}, NewHistogramVec("x", "h", []float64{1}, "l"), "metric x is already registered"},
		{"duplicate within one collector", nil, funcCollector{names: []string{"p", "q", "p"}}, "metric p is already registered"},
		{"empty name", nil, NewCounter("", "e"), `metric name "" is not valid`},
		{"name starting with a digit", nil, NewGauge("1a", "g"), `metric name "1a" is not valid`},
		{"name with a dash", nil, NewGauge("a-b", "g"), `"a-b"`},
		{"name with a space", nil, NewGauge("a b", "g"), `"a b"`},
		{"name with a non-ASCII letter", nil, NewGauge("é", "g"), `"é"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			require.NoError(t, r.Register(tt.first...))
			before := r.Gather()
			err := r.Register(tt.c)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.Equal(t, before, r.Gather(), "a refused collector must not be gathered")
		})
	}

	t.Run("refused collector reserves none of its names", func(t *testing.T) {
		r := NewRegistry()
		r.MustRegister(NewCounter("taken_total", "t"))
		bad := funcCollector{[]string{"free_total", "taken_total"}, func(emit func(Family)) {
			emit(Family{Name: "free_total", Kind: KindCounter, Metrics: []Metric{{Value: 99}}})
		}}
		require.ErrorContains(t, r.Register(bad), "taken_total")
		// free_total came before the clash in bad's names; it must still be
		// free, and bad must not be collected.
		require.NoError(t, r.Register(NewCounter("free_total", "f")))
		for _, f := range r.Gather() {
			for _, m := range f.Metrics {
				require.NotEqual(t, 99.0, m.Value, "family %s from the refused collector", f.Name)
			}
		}
	})
	t.Run("a refusal in one call adds none of its collectors", func(t *testing.T) {
		r := NewRegistry()
		err := r.Register(NewCounter("ok_total", "o"), NewGauge("other", "o"), NewCounter("ok_total", "o"))
		require.ErrorContains(t, err, "ok_total")
		require.Empty(t, r.Gather())
		// Nor are the names of the collectors before the clash taken.
		require.NoError(t, r.Register(NewCounter("ok_total", "o"), NewGauge("other", "o")))
		require.Len(t, r.Gather(), 2)
	})
	t.Run("MustRegister panics on a duplicate", func(t *testing.T) {
		r := NewRegistry()
		r.MustRegister(NewGauge("g", "g"))
		require.PanicsWithError(t, "metric g is already registered", func() { r.MustRegister(NewGauge("g", "g")) })
	})
}

// panicMessage runs f and returns what it panicked with, as text.
func panicMessage(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		require.NotNil(t, r, "no panic")
		msg = fmt.Sprint(r)
	}()
	f()
	return ""
}

// TestPanics checks the programming errors that panic at once, rather than
// writing text Prometheus would reject.
func TestPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
		want string // part of the panic message
	}{
		{"le on a histogram vec", func() { NewHistogramVec("h", "h", []float64{1}, "code", "le") }, `"le"`},
		{"reserved prefix on a counter vec", func() { NewCounterVec("c", "c", "__x") }, `"__x"`},
		{"reserved prefix on a gauge vec", func() { NewGaugeVec("g", "g", "ok", "__name__") }, `"__name__"`},
		{"label starting with a digit", func() { NewCounterVec("c", "c", "1a") }, `metric c: label name "1a" is not valid`},
		{"empty label name", func() { NewGaugeVec("g", "g", "") }, `""`},
		{"label with a dash", func() { NewHistogramVec("h", "h", nil, "a-b") }, `"a-b"`},
		{"too few label values", func() { NewCounterVec("c", "c", "a", "b").WithLabelValues("x") }, "metric c: 1 label values for 2 labels"},
		{"too many label values", func() { NewGaugeVec("g", "g", "a").WithLabelValues("x", "y") }, "metric g: 2 label values for 1 labels"},
		{"values on a vec without labels", func() { NewHistogramVec("h", "h", nil).WithLabelValues("x") }, "metric h: 1 label values for 0 labels"},
		{"no values on a vec with labels", func() { NewHistogramVec("h", "h", nil, "a").WithLabelValues() }, "metric h: 0 label values for 1 labels"},
		{"histogram buckets equal", func() { NewHistogram("h", "h", []float64{1, 1}) }, "not in increasing order"},
		{"histogram buckets decreasing", func() { NewHistogram("h", "h", []float64{1, 3, 2}) }, "not in increasing order"},
		{"histogram vec buckets decreasing, before any child", func() { NewHistogramVec("h", "h", []float64{2, 1}, "l") }, "not in increasing order"},
		{"+Inf not last", func() { NewHistogram("h", "h", []float64{math.Inf(1), 1}) }, "not in increasing order"},
		// The text format has no way to write these; expfmt refuses the page.
		{"label name given twice", func() { NewCounterVec("x_total", "h", "a", "a") }, `"a" is not valid or given twice`},
		{"label name with a colon", func() { NewGaugeVec("g", "h", "a:b") }, `"a:b"`},
		{"gauge func label name given twice", func() { NewGaugeFunc("g", "h", nil, Label{"a", "1"}, Label{"a", "2"}) }, "given twice"},
		{"gauge func label name not valid", func() { NewGaugeFunc("g", "h", nil, Label{"a-b", "1"}) }, `"a-b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, panicMessage(t, tt.f), tt.want)
		})
	}
}

// TestServeHTTP serves a registry over real HTTP, as Prometheus scrapes it.
func TestServeHTTP(t *testing.T) {
	r := NewRegistry()
	c := NewCounterVec("served_total", "Served.", "path")
	c.WithLabelValues(`/a"b`).Add(3)
	h := NewHistogram("served_seconds", "Latency.", []float64{0.1, 1})
	h.Observe(0.5)
	r.MustRegister(c, h, NewGauge("up", "Up."))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	tests := []struct {
		method   string
		wantBody bool
	}{
		{http.MethodGet, true},
		{http.MethodHead, false},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+"/metrics", nil)
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)

			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, ContentType, resp.Header.Get("Content-Type"))
			// A scraper must recognise the Content-Type as the text format.
			require.Equal(t, expfmt.TypeTextPlain, expfmt.ResponseFormat(resp.Header).FormatType())
			want := gatherText(r)
			// HEAD announces the length GET sends.
			require.Equal(t, int64(len(want)), resp.ContentLength)
			if !tt.wantBody {
				// net/http drops a HEAD body whatever the handler writes;
				// ask the handler itself.
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, httptest.NewRequest(tt.method, "/metrics", nil))
				require.Equal(t, http.StatusOK, rec.Code)
				require.Equal(t, ContentType, rec.Header().Get("Content-Type"))
				require.Empty(t, rec.Body.Bytes())
				require.Empty(t, body)
				return
			}
			require.Equal(t, string(want), string(body))
			fams := parseText(t, body)
			require.Len(t, fams, 3)
			require.Equal(t, []string{`path=/a"b`}, fams[1].Metrics[0].Labels)
		})
	}
}

// TestConcurrent has goroutines update metrics, make children and register
// collectors while the test goroutine gathers and renders; run it with
// -race. Every snapshot must be consistent and the final totals exact.
func TestConcurrent(t *testing.T) {
	const workers, perWorker = 8, 2000
	r := NewRegistry()
	c := NewCounter("c_total", "c")
	cv := NewCounterVec("cv_total", "cv", "parity")
	g := NewGauge("g", "g")
	// Observations are 1, 2, 3 and 4 against bounds 1, 2, 3: each bucket
	// holds one value, so the sum follows from the bucket counts and a
	// snapshot whose sum, count and buckets disagree is caught.
	hv := NewHistogramVec("h", "h", []float64{1, 2, 3}, "worker")
	r.MustRegister(c, cv, g, hv)

	var wg sync.WaitGroup
	done := make(chan struct{})
	registerErrs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			own := NewCounter(fmt.Sprintf("worker_%d_total", w), "registered while gathering")
			if err := r.Register(own); err != nil {
				registerErrs <- err
			}
			for i := range perWorker {
				c.Inc()
				cv.WithLabelValues([]string{"even", "odd"}[i%2]).Inc()
				g.Add(1)
				hv.WithLabelValues(strconv.Itoa(w % 3)).Observe(float64(i%4 + 1))
				own.Inc()
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	last := map[string]float64{}
	gathers := 0
	for finished := false; !finished; gathers++ {
		select {
		case <-done:
			finished = true // one more snapshot, after every worker ended
		default:
		}
		fams := r.Gather()
		_ = AppendText(nil, fams)
		for _, f := range fams {
			for _, m := range f.Metrics {
				key := f.Name + fmt.Sprint(m.Labels)
				switch f.Kind {
				case KindCounter, KindGauge:
					require.GreaterOrEqual(t, m.Value, last[key], "%s went down", key)
					last[key] = m.Value
				case KindHistogram:
					b := m.Buckets
					require.Len(t, b, 3)
					require.True(t, b[0].Count <= b[1].Count && b[1].Count <= b[2].Count && b[2].Count <= m.Count, "%s buckets %v count %d", key, b, m.Count)
					sum := b[0].Count + 2*(b[1].Count-b[0].Count) + 3*(b[2].Count-b[1].Count) + 4*(m.Count-b[2].Count)
					require.Equal(t, float64(sum), m.Sum, "%s: sum does not match buckets %v count %d", key, b, m.Count)
				}
			}
		}
	}
	t.Logf("%d gathers while the workers ran", gathers)
	close(registerErrs)
	for err := range registerErrs {
		require.NoError(t, err)
	}

	require.Equal(t, float64(workers*perWorker), c.Value())
	require.Equal(t, float64(workers*perWorker/2), cv.WithLabelValues("even").Value())
	require.Equal(t, float64(workers*perWorker/2), cv.WithLabelValues("odd").Value())
	require.Equal(t, float64(workers*perWorker), g.Value())
	var count uint64
	var sum float64
	for _, f := range r.Gather() {
		switch {
		case f.Name == "h":
			require.Len(t, f.Metrics, 3)
			for _, m := range f.Metrics {
				count += m.Count
				sum += m.Sum
			}
		case strings.HasPrefix(f.Name, "worker_"):
			require.Equal(t, float64(perWorker), f.Metrics[0].Value, f.Name)
		}
	}
	require.Equal(t, uint64(workers*perWorker), count)
	require.Equal(t, float64(workers*perWorker/4*(1+2+3+4)), sum)
	require.Len(t, r.Gather(), 4+workers)
}

// Children are told apart by their values whatever bytes the values hold: a
// separator byte inside a value must not make two lists of values one.
func TestVecValuesDistinct(t *testing.T) {
	v := NewCounterVec("c_total", "h", "a", "b")
	v.WithLabelValues("p\xffq", "r").Inc()
	v.WithLabelValues("p", "q\xffr").Add(2)
	v.WithLabelValues("", "pq").Add(4)
	v.WithLabelValues("pq", "").Add(8)
	var got []float64
	v.Collect(func(f Family) {
		for _, m := range f.Metrics {
			got = append(got, m.Value)
		}
	})
	require.ElementsMatch(t, []float64{1, 2, 4, 8}, got)
}
