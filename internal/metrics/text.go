package metrics

import (
	"math"
	"net/http"
	"strconv"
)

// ContentType is the media type of the text format WriteText writes.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// AppendText appends the families in the Prometheus text format, version
// 0.0.4: a HELP and a TYPE line per family, then a line per sample.
func AppendText(b []byte, fams []Family) []byte {
	for _, f := range fams {
		b = append(b, "# HELP "...)
		b = append(b, f.Name...)
		b = append(b, ' ')
		b = appendEscaped(b, f.Help, false)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.Name...)
		b = append(b, ' ')
		b = append(b, f.Kind.String()...)
		b = append(b, '\n')
		for _, m := range f.Metrics {
			switch f.Kind {
			case KindHistogram:
				for _, bk := range m.Buckets {
					b = appendSample(b, f.Name, "_bucket", m.Labels, Label{"le", formatFloat(bk.UpperBound)}, float64(bk.Count))
				}
				b = appendSample(b, f.Name, "_bucket", m.Labels, Label{"le", "+Inf"}, float64(m.Count))
				b = appendSample(b, f.Name, "_sum", m.Labels, Label{}, m.Sum)
				b = appendSample(b, f.Name, "_count", m.Labels, Label{}, float64(m.Count))
			case KindSummary:
				for _, q := range m.Quantiles {
					b = appendSample(b, f.Name, "", m.Labels, Label{"quantile", formatFloat(q.Quantile)}, q.Value)
				}
				b = appendSample(b, f.Name, "_sum", m.Labels, Label{}, m.Sum)
				b = appendSample(b, f.Name, "_count", m.Labels, Label{}, float64(m.Count))
			default:
				b = appendSample(b, f.Name, "", m.Labels, Label{}, m.Value)
			}
		}
	}
	return b
}

// appendSample writes one sample line; extra is a last label (le,
// quantile) when its name is not empty.
func appendSample(b []byte, name, suffix string, labels []Label, extra Label, v float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(labels) > 0 || extra.Name != "" {
		b = append(b, '{')
		for i, l := range labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, l)
		}
		if extra.Name != "" {
			if len(labels) > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, extra)
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = append(b, formatFloat(v)...)
	return append(b, '\n')
}

func appendLabel(b []byte, l Label) []byte {
	b = append(b, l.Name...)
	b = append(b, `="`...)
	b = appendEscaped(b, l.Value, true)
	return append(b, '"')
}

// appendEscaped escapes backslash and newline, and the double quote in a
// label value, as the text format requires.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	case v == 0:
		return "0" // -0 too, as client_golang writes it
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// ServeHTTP writes the registry in the text format. The page is a few KiB;
// it is not compressed, which would cost more than it saves.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b := AppendText(nil, r.Gather())
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if req.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
