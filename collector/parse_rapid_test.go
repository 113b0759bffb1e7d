package collector

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// genPage draws pages from a grammar of the text format with its odd
// corners: families declared in any order and more than once, suffixed
// names, names inside the braces or quoted, blanks and tabs anywhere, escapes,
// le and quantile labels, special values, timestamps. Byte-level fuzzing
// rarely builds a whole line that expfmt accepts; this does so most of the
// time, so the comparison with expfmt runs on many accepted pages.
func genPage(t *rapid.T) string {
	bases := []string{"a", "h", "s", "c", "c_total", "h_count", "x:y"}
	suffixes := []string{"", "", "", "_bucket", "_sum", "_count", "_total", "_created"}
	blank := func(min int) string {
		return rapid.StringOfN(rapid.SampledFrom([]rune{' ', '\t'}), min, 2, -1).Draw(t, "blank")
	}
	name := func() string {
		n := rapid.SampledFrom(bases).Draw(t, "base") + rapid.SampledFrom(suffixes).Draw(t, "suffix")
		if rapid.IntRange(0, 9).Draw(t, "quote") == 0 {
			n = `"` + n + `"`
		}
		return n
	}
	labelValue := func() string {
		return rapid.SampledFrom([]string{"", "v", "0.1", "1", "+Inf", "0.5", "NaN", `a\"b`, `a\\b`, `a\nb`, "é", "x y", "{}", "=,"}).Draw(t, "lv")
	}
	labelName := func() string {
		return rapid.SampledFrom([]string{"le", "quantile", "code", "a", "b", "_x", `"q"`}).Draw(t, "ln")
	}
	value := func() string {
		return rapid.SampledFrom([]string{"0", "1", "-1", "1.5", "7", "1e3", "2.5e-3", "+Inf", "-Inf", "Inf", "NaN", "nan", ".5", "007", "-0", "1e400", "0x1p3", "1_0", "9007199254740993", "123456789012345678"}).Draw(t, "value")
	}
	var sb strings.Builder
	lines := rapid.IntRange(1, 12).Draw(t, "lines")
	for range lines {
		sb.WriteString(blank(0))
		switch rapid.IntRange(0, 9).Draw(t, "kind") {
		case 0:
			// blank line
		case 1:
			sb.WriteString(rapid.SampledFrom([]string{"#", "# ", "# comment", "#HELP", "# HELP "}).Draw(t, "comment"))
		case 2:
			sb.WriteString(rapid.SampledFrom([]string{"# HELP ", "#HELP "}).Draw(t, "help") + name())
			if rapid.Bool().Draw(t, "helptext") {
				sb.WriteString(blank(1) + rapid.SampledFrom([]string{"text", `esc \\ \n`, "x y z", ""}).Draw(t, "text"))
			}
		case 3, 4:
			sb.WriteString(rapid.SampledFrom([]string{"# TYPE ", "#TYPE "}).Draw(t, "type") + name() + blank(1) +
				rapid.SampledFrom([]string{"counter", "gauge", "histogram", "summary", "untyped", "gaugehistogram", "COUNTER", "Histogram"}).Draw(t, "typ"))
		default:
			braces := rapid.IntRange(0, 5).Draw(t, "braces") == 0
			n := name()
			var ls []string
			for range rapid.IntRange(0, 3).Draw(t, "nlabels") {
				ls = append(ls, labelName()+blank(0)+"="+blank(0)+`"`+labelValue()+`"`)
			}
			if braces {
				at := rapid.IntRange(0, len(ls)).Draw(t, "nameat")
				ls = append(ls[:at], append([]string{n}, ls[at:]...)...)
				sb.WriteString("{" + strings.Join(ls, ","+blank(0)) + "}")
			} else {
				sb.WriteString(n)
				if len(ls) > 0 || rapid.Bool().Draw(t, "emptybraces") {
					sb.WriteString(blank(0) + "{" + blank(0) + strings.Join(ls, ","+blank(0)) + blank(0) + "}")
				}
			}
			sb.WriteString(blank(1) + value())
			if rapid.IntRange(0, 4).Draw(t, "ts") == 0 {
				sb.WriteString(blank(1) + rapid.SampledFrom([]string{"0", "1700000000000", "-5", "+3", "1.5"}).Draw(t, "tsv"))
			}
		}
		if rapid.IntRange(0, 9).Draw(t, "trailing") == 0 {
			sb.WriteString(blank(1))
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func TestParseMatchesExpfmtOnGeneratedPages(t *testing.T) {
	accepted := 0
	rapid.Check(t, func(t *rapid.T) {
		in := []byte(genPage(t))
		// Now and then a byte that matters to the grammar, put anywhere.
		for range rapid.IntRange(0, 2).Draw(t, "edits") {
			at := rapid.IntRange(0, len(in)).Draw(t, "at")
			c := rapid.SampledFrom([]byte("\"\\{},= \t\n#:x\r\xff")).Draw(t, "byte")
			if rapid.Bool().Draw(t, "replace") && at < len(in) {
				in[at] = c
			} else {
				in = append(in[:at], append([]byte{c}, in[at:]...)...)
			}
		}
		got, err := parseAll(NewParser(), in)
		want, ok := expfmtCanon(in)
		if !ok || braceNameAfterType(in) {
			return
		}
		accepted++
		require.NoError(t, err, "expfmt accepts:\n%s", in)
		require.Equal(t, want, oursCanon(got), "page:\n%s", in)
	})
	t.Logf("%d pages accepted by expfmt were compared", accepted)
}
