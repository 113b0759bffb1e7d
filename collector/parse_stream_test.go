package collector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

// chunkyReader yields b in reads of random sizes from 1 to max bytes, the
// last one together with io.EOF when eofWithData.
type chunkyReader struct {
	b           []byte
	rnd         *rand.Rand
	max         int
	eofWithData bool
}

func (r *chunkyReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(1+r.rnd.IntN(r.max), len(p), len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	if r.eofWithData && len(r.b) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// parseAllStream is parseAll through ResetReader with a window of the given
// size.
func parseAllStream(p *Parser, r io.Reader, window int) ([]ownSample, error) {
	p.window = window
	p.ResetReader(r)
	return copySamples(p)
}

// streamPages are the pages of the differential tests: the real fixtures, a
// generated page, the fuzz seeds and pages that end or fail in odd places.
func streamPages(t *testing.T) map[string][]byte {
	t.Helper()
	pages := map[string][]byte{}
	for name, b := range readFixtures(t) {
		pages[name] = b
	}
	pages["traefikpage-20-1"] = traefikpage.Generate(20, 1)
	seeds, err := filepath.Glob("testdata/fuzz/FuzzParse/*")
	require.NoError(t, err)
	for _, path := range seeds {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		// "go test fuzz v1\n[]byte(\"...\")\n"
		_, lit, ok := strings.Cut(string(b), "\n[]byte(")
		require.True(t, ok, path)
		v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(lit), ")"))
		require.NoError(t, err, path)
		pages["fuzz/"+filepath.Base(path)] = []byte(v)
	}
	long := strings.Repeat("x", 3000)
	for name, s := range map[string]string{
		"empty":                  "",
		"blank":                  "   \t ",
		"no final newline":       "# TYPE a gauge\na 1\na{x=\"y\"} 2",
		"blanks at the end":      "a 1\n  \t",
		"blank lines":            "\n\n\na 1\n\n\nb 2\n\n",
		"comments":               "# hello\n#\n# HELP a text\n# TYPE a counter\na_total 1\n#TYPE b gauge\nb 2\n",
		"long line":              "# TYPE a gauge\na{x=\"" + long + "\"} 1\nb{y=\"" + long + long + "\"} 2\nc 3\n",
		"long comment":           "# " + long + "\n# TYPE a gauge\na 1\n",
		"escapes":                "m{a=\"\\\"\\\\\\n\"} 1 2\n{\"x\",y=\"z\"} 1\n",
		"error late":             "# TYPE a gauge\na 1\na 2\na 3\n# TYPE b gauge\nb{x=\"1\",x=\"2\"} 1\nc 4\n",
		"unterminated at end":    "a 1\nb{x=\"oops",
		"unterminated label set": "a 1\na{x=\"1\"",
		"histogram":              "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n# HELP h_count shadow\nh_count 3\n",
		"CRLF":                   "a 1\r\nb 2\r\n",
	} {
		pages[name] = []byte(s)
	}
	return pages
}

// TestParseStreamMatchesWhole: a page read through the window, whatever
// the window size and however the reader splits it, gives the samples and
// the error (line number included) of the whole page.
func TestParseStreamMatchesWhole(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	whole, stream := NewParser(), NewParser()
	for name, page := range streamPages(t) {
		t.Run(name, func(t *testing.T) {
			want, wantErr := parseAll(whole, page)
			windows := []int{1, 2, 3, 5, 8, 13, 64, 100, 257, 4096, streamWindow}
			if len(page) > 1<<20 {
				windows = []int{1, 77, 4096, streamWindow} // a large page: fewer sizes
			}
			for _, w := range windows {
				for _, rd := range []struct {
					name string
					r    io.Reader
				}{
					{"whole reads", bytes.NewReader(page)},
					{"one byte", iotest.OneByteReader(bytes.NewReader(page))},
					{"random", &chunkyReader{b: page, rnd: rnd, max: 1 + rnd.IntN(2*w+10)}},
					{"random, EOF with data", &chunkyReader{b: page, rnd: rnd, max: 1 + rnd.IntN(2*w+10), eofWithData: true}},
				} {
					got, err := parseAllStream(stream, rd.r, w)
					require.Equal(t, wantErr, err, "window %d, %s", w, rd.name)
					require.Equal(t, renderSamples(want), renderSamples(got), "window %d, %s", w, rd.name)
				}
			}
		})
	}
}

// TestParseStreamReadError: an error of the reader ends the page after the
// lines read whole before it, and is what Err returns.
func TestParseStreamReadError(t *testing.T) {
	boom := errors.New("connection reset")
	page := "# TYPE a gauge\na 1\na{x=\"2\"} 2\na{x=\"3\"} 3\n"
	cut := strings.Index(page, "a{x=\"3\"}") + 3
	p := NewParser()
	p.window = 8
	got, err := parseAllStream(p, io.MultiReader(strings.NewReader(page[:cut]), iotest.ErrReader(boom)), 8)
	require.ErrorIs(t, err, boom)
	var pe *ParseError
	require.False(t, errors.As(err, &pe), "not a parse error")
	require.Len(t, got, 2, "the samples of the complete lines")
	require.False(t, p.Next())
}

// TestParseStreamWindow: a line longer than the window grows it for that
// page only; the next page gets the fixed window back.
func TestParseStreamWindow(t *testing.T) {
	p := NewParser()
	p.window = 64
	long := "a{x=\"" + strings.Repeat("y", 1000) + "\"} 1\n"
	got, err := parseAllStream(p, strings.NewReader(long+"b 2\n"), 64)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.GreaterOrEqual(t, len(p.win), len(long))
	_, err = parseAllStream(p, strings.NewReader("b 2\n"), 64)
	require.NoError(t, err)
	require.Len(t, p.win, 64)
}

// TestParseStreamZeroAllocs: streaming a page the parser has seen before
// allocates nothing, as Reset does.
func TestParseStreamZeroAllocs(t *testing.T) {
	p := NewParser()
	page := traefikpage.Generate(20, 1)
	r := bytes.NewReader(page)
	run := func() {
		r.Reset(page)
		p.ResetReader(r)
		for p.Next() {
		}
		if p.Err() != nil {
			t.Fatal(p.Err())
		}
	}
	run()
	require.Zero(t, testing.AllocsPerRun(5, run))
}

// TestConvertStreamMatchesWhole: the converter writes byte for byte the
// same line protocol, with the same counts, from a page read through the
// window in random splits as from the whole page, in every schema and
// across scrapes (the traefik schema's deltas included).
func TestConvertStreamMatchesWhole(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	sequences := map[string][]string{"fixtures": readScrapes(t)}
	var gen []string
	for r := 1; r <= 3; r++ {
		gen = append(gen, string(traefikpage.Generate(20, r)))
	}
	sequences["traefikpage-20"] = gen
	for _, schema := range []string{config.SchemaTraefik, config.SchemaPrometheus, config.SchemaTelegraf} {
		for name, pages := range sequences {
			t.Run(schema+"/"+name, func(t *testing.T) {
				whole := newTestConverter(t, schema, func(o *ConvertOptions) { o.URL = "http://traefik:8080/metrics" })
				stream := newTestConverter(t, schema, func(o *ConvertOptions) { o.URL = "http://traefik:8080/metrics" })
				wp, sp := NewParser(), NewParser()
				for i, page := range pages {
					ts := t0.Add(time.Duration(i) * 10 * time.Second)
					wp.Reset([]byte(page))
					want, wantSt, wantErr := whole.Convert(wp, ts, nil)
					require.NoError(t, wantErr)
					for _, w := range []int{1 + rnd.IntN(300), 1 + rnd.IntN(5000), streamWindow} {
						// Every window converts the same page into a copy of
						// the stream converter, so each starts from the same
						// state as the whole-page one.
						c := cloneConverter(t, stream)
						sp.window = w
						sp.ResetReader(&chunkyReader{b: []byte(page), rnd: rnd, max: 1 + rnd.IntN(2*w)})
						got, st, err := c.Convert(sp, ts, nil)
						require.NoError(t, err)
						require.Equal(t, wantSt, st, "scrape %d, window %d", i, w)
						require.True(t, bytes.Equal(want, got), "scrape %d, window %d: line protocol differs", i, w)
					}
					sp.window = 0
					sp.ResetReader(strings.NewReader(page))
					got, _, err := stream.Convert(sp, ts, nil)
					require.NoError(t, err)
					require.True(t, bytes.Equal(want, got), "scrape %d", i)
				}
			})
		}
	}
}

// cloneConverter copies c's memory through its saved state, so that a
// conversion into the copy leaves c as it was.
func cloneConverter(t *testing.T, c *Converter) *Converter {
	t.Helper()
	b, err := c.MarshalState()
	require.NoError(t, err)
	d := *c
	d.fams = map[string]*familyInfo{}
	d.fam, d.tsText = nil, nil
	d.st = nil
	d.pending, d.pendKeys, d.labels, d.key, d.skey, d.names, d.bounds, d.deltas = nil, nil, nil, nil, nil, nil, nil, nil
	d.nameTab = map[string]*nameRef{}
	require.NoError(t, d.UnmarshalState(b))
	return &d
}

func ExampleParser_ResetReader() {
	p := NewParser()
	p.ResetReader(strings.NewReader("# TYPE a counter\na_total{x=\"1\"} 2\n"))
	for p.Next() {
		s := p.Sample()
		fmt.Println(string(s.Family), string(s.Name), string(s.Labels[0].Value), s.Value)
	}
	fmt.Println(p.Err())
	// Output:
	// a a_total 1 2
	// <nil>
}
