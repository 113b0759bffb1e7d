package collector

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// This file renders what expfmt.TextParser makes of a page and what our
// Parser makes of it into one canonical text, so a test can compare them.
// expfmt folds the _bucket/_sum/_count lines of a histogram or summary into
// one metric, so our samples are folded the same way (foldSamples) before
// they are rendered: by label set without le/quantile, the last _sum, _count
// or timestamp winning, an le or quantile of NaN dropped, and a histogram
// whose counts are not all integers reported in floats throughout.

// expfmtCanon parses body with expfmt; ok is false when expfmt rejects it
// (or panics, which it does on some inputs that name the metric inside the
// braces).
func expfmtCanon(body []byte) (canon string, ok bool) {
	defer func() {
		if recover() != nil {
			canon, ok = "", false
		}
	}()
	tp := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := tp.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return "", false
	}
	names := make([]string, 0, len(mfs))
	for n := range mfs {
		names = append(names, n)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, n := range names {
		mf := mfs[n]
		t := dtoType(mf.GetType())
		fmt.Fprintf(&sb, "# %s %s\n", n, t)
		for _, m := range mf.GetMetric() {
			var ls [][2]string
			for _, l := range m.GetLabel() {
				ls = append(ls, [2]string{l.GetName(), l.GetValue()})
			}
			sb.WriteString(renderLabels(ls))
			switch t {
			case "counter":
				fmt.Fprintf(&sb, " v=%s", g(m.GetCounter().GetValue()))
			case "gauge":
				fmt.Fprintf(&sb, " v=%s", g(m.GetGauge().GetValue()))
			case "untyped":
				fmt.Fprintf(&sb, " v=%s", g(m.GetUntyped().GetValue()))
			case "summary":
				s := m.GetSummary()
				sb.WriteString(" q=")
				for _, q := range s.GetQuantile() {
					fmt.Fprintf(&sb, "%s:%s,", g(q.GetQuantile()), g(q.GetValue()))
				}
				sb.WriteString(" sum=" + optF(s.SampleSum))
				cnt := "-"
				if s.SampleCount != nil {
					cnt = g(float64(s.GetSampleCount()))
				}
				sb.WriteString(" count=" + cnt)
			case "histogram":
				h := m.GetHistogram()
				sb.WriteString(" b=")
				for _, b := range h.GetBucket() {
					v := float64(b.GetCumulativeCount())
					if b.CumulativeCountFloat != nil {
						v = b.GetCumulativeCountFloat()
					}
					fmt.Fprintf(&sb, "%s:%s,", g(b.GetUpperBound()), g(v))
				}
				sb.WriteString(" sum=" + optF(h.SampleSum))
				cnt := "-"
				if h.SampleCountFloat != nil {
					cnt = g(h.GetSampleCountFloat())
				} else if h.SampleCount != nil {
					cnt = g(float64(h.GetSampleCount()))
				}
				sb.WriteString(" count=" + cnt)
			}
			ts := "-"
			if m.TimestampMs != nil {
				ts = strconv.FormatInt(m.GetTimestampMs(), 10)
			}
			sb.WriteString(" ts=" + ts + "\n")
		}
	}
	return sb.String(), true
}

func dtoType(t dto.MetricType) string {
	switch t {
	case dto.MetricType_COUNTER:
		return "counter"
	case dto.MetricType_GAUGE:
		return "gauge"
	case dto.MetricType_SUMMARY:
		return "summary"
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return "histogram"
	}
	return "untyped"
}

func typeName(t FamilyType) string {
	return [...]string{"untyped", "counter", "gauge", "histogram", "summary"}[t]
}

func g(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func optF(v *float64) string {
	if v == nil {
		return "-"
	}
	return g(*v)
}

func renderLabels(ls [][2]string) string {
	slices.SortStableFunc(ls, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	var sb strings.Builder
	sb.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "%s=%q", l[0], l[1])
	}
	sb.WriteByte('}')
	return sb.String()
}

// ownSample is a Sample copied out of the parser's buffers.
type ownSample struct {
	Family, Name string
	Type         FamilyType
	Labels       [][2]string
	Value        float64
	TimestampMs  int64
	HasTimestamp bool
}

// parseAll runs our parser over body and copies every sample.
func parseAll(p *Parser, body []byte) ([]ownSample, error) {
	p.Reset(body)
	return copySamples(p)
}

// copySamples copies every sample p yields.
func copySamples(p *Parser) ([]ownSample, error) {
	var out []ownSample
	for p.Next() {
		s := p.Sample()
		o := ownSample{Family: string(s.Family), Name: string(s.Name), Type: s.Type,
			Value: s.Value, TimestampMs: s.TimestampMs, HasTimestamp: s.HasTimestamp}
		for _, l := range s.Labels {
			o.Labels = append(o.Labels, [2]string{string(l.Name), string(l.Value)})
		}
		out = append(out, o)
	}
	return out, p.Err()
}

type foldedMetric struct {
	labels [][2]string
	value  float64
	// summary and histogram
	points         []string // "bound:value"
	sum            *float64
	countU         *uint64
	countF         *float64
	anyFloatBucket bool
	ts             *int64
}

type foldedFamily struct {
	typ     FamilyType
	metrics []*foldedMetric
	bySig   map[string]*foldedMetric
}

// expfmtFloat is expfmt's reading of a le or quantile label.
func expfmtFloat(s string) float64 {
	if strings.ContainsAny(s, "pP_") {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// oursCanon renders our samples in the form of expfmtCanon.
func oursCanon(samples []ownSample) string {
	fams := map[string]*foldedFamily{}
	for _, s := range samples {
		famName, typ := s.Family, s.Type
		if suffix := strings.TrimPrefix(s.Name, s.Family); s.Name != s.Family &&
			(suffix == "_created" || (typ == Counter && suffix == "_total")) {
			// Our documented extension: expfmt makes these untyped families.
			famName, typ = s.Name, Untyped
		}
		f := fams[famName]
		if f == nil {
			f = &foldedFamily{typ: typ, bySig: map[string]*foldedMetric{}}
			fams[famName] = f
		}
		if typ != Histogram && typ != Summary {
			m := &foldedMetric{labels: s.Labels, value: s.Value}
			if s.HasTimestamp {
				m.ts = &s.TimestampMs
			}
			f.metrics = append(f.metrics, m)
			continue
		}
		special := "le"
		if typ == Summary {
			special = "quantile"
		}
		var ls [][2]string
		bound, hasBound := math.NaN(), false
		for _, l := range s.Labels {
			if l[0] == special {
				bound, hasBound = expfmtFloat(l[1]), true
				continue
			}
			ls = append(ls, l)
		}
		sig := renderLabels(slices.Clone(ls))
		m := f.bySig[sig]
		if m == nil {
			m = &foldedMetric{labels: ls}
			f.bySig[sig] = m
			f.metrics = append(f.metrics, m)
		}
		if s.HasTimestamp {
			m.ts = &s.TimestampMs
		}
		v := s.Value
		suffix := strings.TrimPrefix(s.Name, famName)
		isInt := v == float64(uint64(v))
		switch {
		case suffix == "_count" && typ == Summary:
			u := uint64(v)
			m.countU = &u
		case suffix == "_count":
			if isInt {
				u := uint64(v)
				m.countU = &u
			} else {
				m.countF = &v
			}
		case suffix == "_sum":
			m.sum = &v
		case hasBound && !math.IsNaN(bound):
			if typ == Histogram && isInt {
				v = float64(uint64(v))
			} else if typ == Histogram {
				m.anyFloatBucket = true
			}
			m.points = append(m.points, g(bound)+":"+g(v))
		}
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, n := range names {
		f := fams[n]
		fmt.Fprintf(&sb, "# %s %s\n", n, typeName(f.typ))
		for _, m := range f.metrics {
			sb.WriteString(renderLabels(slices.Clone(m.labels)))
			switch f.typ {
			case Histogram, Summary:
				if f.typ == Histogram {
					sb.WriteString(" b=")
				} else {
					sb.WriteString(" q=")
				}
				for _, pt := range m.points {
					sb.WriteString(pt + ",")
				}
				sb.WriteString(" sum=" + optF(m.sum))
				cnt := "-"
				floatCount := m.countF != nil && *m.countF != 0
				if f.typ == Histogram && (floatCount || m.anyFloatBucket) && !floatCount {
					// expfmt's normalizeHistogram gives the count a float
					// value, 0 when there was no _count line.
					var c float64
					if m.countU != nil {
						c = float64(*m.countU)
					}
					m.countF = &c
				}
				if m.countF != nil {
					cnt = g(*m.countF)
				} else if m.countU != nil {
					cnt = g(float64(*m.countU))
				}
				sb.WriteString(" count=" + cnt)
			default:
				fmt.Fprintf(&sb, " v=%s", g(m.value))
			}
			ts := "-"
			if m.ts != nil {
				ts = strconv.FormatInt(*m.ts, 10)
			}
			sb.WriteString(" ts=" + ts + "\n")
		}
	}
	return sb.String()
}
