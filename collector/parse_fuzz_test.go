package collector

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// braceNameAfterType reports inputs where expfmt's result depends on state
// left over from the previous line: when a line starts with '{' (the metric
// name is inside the braces), expfmt decides whether le and quantile are
// labels from the family of the line before, and can panic on a nil map. Our
// parser decides from the sample's own family. Without any # TYPE line every
// family is untyped and the two agree, so only those inputs are compared.
func braceNameAfterType(in []byte) bool {
	if !bytes.Contains(in, []byte("TYPE")) {
		return false
	}
	for _, l := range bytes.Split(in, []byte("\n")) {
		if l = bytes.TrimLeft(l, " \t"); len(l) > 0 && l[0] == '{' {
			return true
		}
	}
	return false
}

// FuzzParse checks that the parser never panics, reads an input the same way
// after a Reset from another page and through a small window (ResetReader), and reads every input expfmt accepts
// exactly as expfmt does.
func FuzzParse(f *testing.F) {
	// Whole fixtures make the fuzzer crawl (tens of KB per input); pieces
	// of a few KB cut at line ends keep their shapes.
	for _, body := range readFixtures(f) {
		for len(body) > 0 {
			n := min(len(body), 3000)
			if i := bytes.IndexByte(body[n:], '\n'); i >= 0 {
				n += i + 1
			} else {
				n = len(body)
			}
			f.Add(body[:n])
			body = body[n:]
		}
	}
	for _, s := range []string{
		"a 1\n", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
		"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n",
		"m{a=\"\\\"\\\\\\n\"} 1 2\n", "{\"x\",y=\"z\"} 1\n", "# TYPE c counter\nc_total 1\nc_created 2\n",
	} {
		f.Add([]byte(s))
	}
	// A small page read first, so every input is also read by a parser
	// that holds families from another page.
	warm := []byte("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n" +
		"# TYPE c counter\nc_total{a=\"\\n\"} 1\nu 1\n# HELP s_count x\n# TYPE s summary\ns_sum 1\n")
	f.Fuzz(func(t *testing.T, in []byte) {
		p := NewParser()
		_, err := parseAll(p, warm)
		require.NoError(t, err)
		got, err := parseAll(p, in)
		again, errAgain := parseAll(NewParser(), in)
		require.Equal(t, err, errAgain, "a reused parser errs differently")
		require.Equal(t, renderSamples(again), renderSamples(got), "a reused parser reads differently")
		streamed, errStream := parseAllStream(NewParser(), iotest.OneByteReader(bytes.NewReader(in)), 1+len(in)%17)
		require.Equal(t, errAgain, errStream, "streamed through a window, it errs differently")
		require.Equal(t, renderSamples(again), renderSamples(streamed), "streamed through a window, it reads differently")
		want, ok := expfmtCanon(in)
		if !ok || braceNameAfterType(in) {
			return
		}
		require.NoError(t, err, "expfmt accepts this input")
		require.Equal(t, want, oursCanon(got))
	})
}

// renderSamples prints samples so that NaN equals NaN.
func renderSamples(ss []ownSample) string {
	var sb strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&sb, "%s %d %s %q %s %d %v\n", s.Family, s.Type, s.Name, s.Labels, g(s.Value), s.TimestampMs, s.HasTimestamp)
	}
	return sb.String()
}
