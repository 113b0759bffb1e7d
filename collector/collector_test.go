package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/syncbuf"
)

// appendRecorder is an Appender that keeps what it is given.
type appendRecorder struct {
	mu      sync.Mutex
	records []string
	lines   []int
	err     error
}

func (r *appendRecorder) Append(lines []byte, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.records = append(r.records, string(lines))
	r.lines = append(r.lines, n)
	return nil
}

func (r *appendRecorder) take() (all string, records []string, lines []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	all = strings.Join(r.records, "")
	records, lines = r.records, r.lines
	r.records, r.lines = nil, nil
	return all, records, lines
}

// syncBuffer captures logs written by other goroutines while the test reads them.
type syncBuffer = syncbuf.Buffer

func testConfig(urls ...string) *config.Config {
	cfg := config.Default()
	cfg.Traefik.URLs = urls
	cfg.InfluxDB.Precision = "s"
	cfg.Batch.MaxLines = 7
	return &cfg
}

func newTestCollector(t *testing.T, cfg *config.Config, out Appender) (*Collector, *syncBuffer) {
	t.Helper()
	t.Setenv("HOSTNAME", "test")
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(cfg, out, metrics.NewRegistry(), log)
	require.NoError(t, err)
	return c, logs
}

// tick scrapes every source once at now, as one tick of Run does.
func tick(c *Collector, now time.Time) {
	for _, s := range c.sources {
		c.scrapeSource(context.Background(), s, now, nil)
	}
}

// pageServer serves the given pages in turn, then the last one again.
func pageServer(t *testing.T, pages ...string) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	i := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		p := pages[min(i, len(pages)-1)]
		i++
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(p))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestCollectorFixtures runs the real chain (HTTP, scraper, parser,
// converter, records) over the fixture scrapes and checks that the records
// add up to the converter's golden files, cut as batch.max_lines asks.
func TestCollectorFixtures(t *testing.T) {
	pages := readScrapes(t)
	srv := pageServer(t, pages...)
	rec := &appendRecorder{}
	c, _ := newTestCollector(t, testConfig(srv.URL+"/metrics"), rec)
	for i := range pages {
		tick(c, t0.Add(time.Duration(i)*10*time.Second))
		all, records, lines := rec.take()
		want, err := os.ReadFile(filepath.Join("testdata", "golden", "traefik", strings.TrimSuffix(scrapeFixtures[i], ".prom")+".lp"))
		require.NoError(t, err)
		require.Equal(t, string(want), all, "scrape %d", i+1)
		for j, r := range records {
			require.LessOrEqual(t, lines[j], 7)
			require.Equal(t, strings.Count(r, "\n"), lines[j])
			require.True(t, strings.HasSuffix(r, "\n"))
		}
	}
	target := c.sources[0].targets[srv.URL+"/metrics"]
	require.NotNil(t, target)
	require.Equal(t, 3.0, target.m.success.Value())
	require.Equal(t, float64(6+42+16), target.m.points.Value())
}

func TestAppendRecords(t *testing.T) {
	lp := "a 1\nbb 2\nccc 3\ndddddddddd 4\ne 5\n"
	tests := []struct {
		name     string
		maxLines int
		maxBytes int
		want     []string
	}{
		{"one record", 10, 1000, []string{lp}},
		{"by lines", 2, 1000, []string{"a 1\nbb 2\n", "ccc 3\ndddddddddd 4\n", "e 5\n"}},
		{"by bytes", 10, 12, []string{"a 1\nbb 2\n", "ccc 3\n", "dddddddddd 4\n", "e 5\n"}},
		{"a longer line goes alone", 10, 5, []string{"a 1\n", "bb 2\n", "ccc 3\n", "dddddddddd 4\n", "e 5\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &appendRecorder{}
			require.NoError(t, appendRecords(rec, []byte(lp), tt.maxLines, tt.maxBytes))
			all, records, lines := rec.take()
			require.Equal(t, lp, all)
			require.Equal(t, tt.want, records)
			for i, r := range records {
				require.Equal(t, strings.Count(r, "\n"), lines[i])
			}
		})
	}
}

// TestCollectorFailingTarget plays a target through good and bad answers
// (500, garbage, oversized, too slow): each change of state is logged once
// (Warn going bad, Info recovering), every failed scrape is counted by
// kind, and nothing is fatal.
func TestCollectorFailingTarget(t *testing.T) {
	good := "# TYPE traefik_open_connections gauge\ntraefik_open_connections{entrypoint=\"web\",protocol=\"TCP\"} 1\n"
	type answer int
	const (
		ok answer = iota
		status500
		garbage
		huge
		slow
	)
	var mu sync.Mutex
	var plan []answer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a := plan[0]
		plan = plan[1:]
		mu.Unlock()
		switch a {
		case ok:
			_, _ = w.Write([]byte(good))
		case status500:
			http.Error(w, "boom", http.StatusInternalServerError)
		case garbage:
			_, _ = w.Write([]byte("this is { not a metrics page\n"))
		case huge:
			_, _ = w.Write([]byte(good + strings.Repeat("# padding\n", 1000)))
		case slow:
			<-r.Context().Done() // until the scraper gives up
		}
	}))
	defer srv.Close()
	plan = []answer{ok, status500, status500, garbage, garbage, huge, slow, slow, ok, ok}
	steps := len(plan)

	cfg := testConfig(srv.URL + "/metrics")
	cfg.Traefik.MaxBody = 4 * config.KiB
	cfg.Traefik.Timeout = 200 * time.Millisecond
	rec := &appendRecorder{}
	c, logs := newTestCollector(t, cfg, rec)
	for i := range steps {
		tick(c, t0.Add(time.Duration(i)*10*time.Second))
	}
	kinds := logKinds(logs.String())
	want := []string{"level=WARN.*kind=http_5xx", "level=WARN.*kind=parse", "level=WARN.*kind=too_large",
		"level=WARN.*kind=timeout", "level=INFO.*was=timeout"}
	require.Len(t, kinds, len(want), "logs:\n%s", logs)
	for i, w := range want {
		require.Regexp(t, w, kinds[i])
	}
	label := srv.URL + "/metrics"
	for result, n := range map[string]float64{"success": 3, "http_5xx": 2, "parse": 2, "too_large": 1, "timeout": 2} {
		require.Equal(t, n, c.m.scrapes.WithLabelValues(label, result).Value(), result)
	}
	all, _, _ := rec.take()
	require.Equal(t, 3, strings.Count(all, "\n"), "one gauge per good scrape")
}

// logKinds returns the log lines about scrapes going bad or recovering.
func logKinds(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="scrape failed"`) || strings.Contains(l, `msg="scrape recovered"`) {
			out = append(out, l)
		}
	}
	return out
}

func TestCollectorDownTarget(t *testing.T) {
	// A port nothing listens on: take one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	rec := &appendRecorder{}
	c, logs := newTestCollector(t, testConfig("http://"+addr+"/metrics"), rec)
	for i := range 3 {
		tick(c, t0.Add(time.Duration(i)*10*time.Second))
	}
	kinds := logKinds(logs.String())
	require.Len(t, kinds, 1, "logged once, not every scrape:\n%s", logs)
	require.Contains(t, kinds[0], "level=WARN")
	require.Contains(t, kinds[0], "kind=connect")
	label := "http://" + addr + "/metrics"
	require.Equal(t, 3.0, c.m.scrapes.WithLabelValues(label, "connect").Value())
	all, _, _ := rec.take()
	require.Empty(t, all)
}

func TestCollectorAppendError(t *testing.T) {
	srv := pageServer(t, "# TYPE g gauge\ng 1\n")
	rec := &appendRecorder{err: errors.New("disk full")}
	cfg := testConfig(srv.URL + "/metrics")
	cfg.Metrics.Include = nil
	c, logs := newTestCollector(t, cfg, rec)
	for i := range 3 {
		tick(c, t0.Add(time.Duration(i)*10*time.Second))
	}
	rec.mu.Lock()
	rec.err = nil
	rec.mu.Unlock()
	tick(c, t0.Add(30*time.Second))
	target := c.sources[0].targets[srv.URL+"/metrics"]
	require.Equal(t, 3.0, target.m.appendErrors.Value())
	require.Equal(t, 1.0, target.m.points.Value(), "only the points the buffer took")
	require.Equal(t, 1, strings.Count(logs.String(), "level=ERROR"), "logs:\n%s", logs)
	require.Equal(t, 1, strings.Count(logs.String(), `msg="the buffer takes points again"`))
	all, _, _ := rec.take()
	require.Equal(t, "g,host=test value=1 1700000030\n", all)
}

func TestCollectorInstanceTags(t *testing.T) {
	page := "# TYPE g gauge\ng 1\n"
	a, b := pageServer(t, page), pageServer(t, page)
	tests := []struct {
		name     string
		urls     []string
		instance string
		want     []string
	}{
		{"one URL: no instance tag", []string{a.URL}, "instance",
			[]string{"g,host=test,region=eu value=1 1700000000\n"}},
		{"several URLs: instance tag", []string{a.URL, b.URL}, "instance",
			[]string{"g,host=test,instance=" + a.Listener.Addr().String() + ",region=eu value=1 1700000000\n",
				"g,host=test,instance=" + b.Listener.Addr().String() + ",region=eu value=1 1700000000\n"}},
		{"instance tag wins over a configured tag", []string{a.URL, b.URL}, "region",
			[]string{"g,host=test,region=" + a.Listener.Addr().String() + " value=1 1700000000\n",
				"g,host=test,region=" + b.Listener.Addr().String() + " value=1 1700000000\n"}},
		{"several URLs, instance_tag empty", []string{a.URL, b.URL}, "",
			[]string{"g,host=test,region=eu value=1 1700000000\n", "g,host=test,region=eu value=1 1700000000\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(tt.urls...)
			cfg.Metrics.Include = nil
			cfg.InstanceTag = tt.instance
			cfg.Tags = map[string]string{"region": "eu"}
			rec := &appendRecorder{}
			c, _ := newTestCollector(t, cfg, rec)
			tick(c, t0)
			_, records, _ := rec.take()
			require.ElementsMatch(t, tt.want, records)
		})
	}
}

// fakeResolver answers LookupHost from a table that tests change.
type fakeResolver struct {
	mu    sync.Mutex
	addrs []string
	err   error
}

func (f *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.addrs...), f.err
}

func TestCollectorDNSTargets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig("dns+http://traefik-headless.ingress.svc:9100/metrics")
		cfg.Metrics.Include = nil
		cfg.Traefik.SeriesTTL = time.Minute
		rec := &appendRecorder{}
		c, logs := newTestCollector(t, cfg, rec)
		res := &fakeResolver{addrs: []string{"10.0.0.1", "10.0.0.2"}}
		c.resolver = res
		var mu sync.Mutex
		var fetched []string
		c.fetch = wholePage(func(ctx context.Context, url string, buf []byte) ([]byte, error) {
			mu.Lock()
			fetched = append(fetched, url)
			mu.Unlock()
			return append(buf, "# TYPE g gauge\ng 1\n"...), nil
		})
		took := func() []string {
			mu.Lock()
			defer mu.Unlock()
			f := fetched
			fetched = nil
			return f
		}

		tick(c, t0)
		require.ElementsMatch(t, []string{"http://10.0.0.1:9100/metrics", "http://10.0.0.2:9100/metrics"}, took())
		_, records, _ := rec.take()
		require.ElementsMatch(t, []string{
			"g,host=test,instance=10.0.0.1:9100 value=1 1700000000\n",
			"g,host=test,instance=10.0.0.2:9100 value=1 1700000000\n",
		}, records)

		// 10.0.0.2 leaves DNS: no longer scraped, but remembered for the TTL.
		res.mu.Lock()
		res.addrs = []string{"10.0.0.1"}
		res.mu.Unlock()
		tick(c, t0.Add(10*time.Second))
		require.Equal(t, []string{"http://10.0.0.1:9100/metrics"}, took())
		require.Len(t, c.sources[0].targets, 2)
		tick(c, t0.Add(2*time.Minute))
		require.Len(t, c.sources[0].targets, 1, "forgotten after traefik.series_ttl")
		require.Equal(t, []string{"http://10.0.0.1:9100/metrics"}, took())

		// Resolution fails: the known address is scraped, logged once.
		res.mu.Lock()
		res.err = errors.New("no such host")
		res.mu.Unlock()
		tick(c, t0.Add(3*time.Minute))
		tick(c, t0.Add(4*time.Minute))
		require.Equal(t, []string{"http://10.0.0.1:9100/metrics", "http://10.0.0.1:9100/metrics"}, took())
		require.Equal(t, 1, strings.Count(logs.String(), "cannot resolve"), "logs:\n%s", logs)
	})
}

// TestCollectorRunInterval checks the loop on a fake clock: scrapes on the
// interval, a slow scrape delays the next instead of stacking another one
// beside it, and cancelling returns nil.
func TestCollectorRunInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig("http://127.0.0.1:9/metrics")
		cfg.Metrics.Include = nil
		rec := &appendRecorder{}
		c, _ := newTestCollector(t, cfg, rec)
		start := time.Now()
		var mu sync.Mutex
		var starts []time.Duration
		running := 0
		c.fetch = wholePage(func(ctx context.Context, url string, buf []byte) ([]byte, error) {
			mu.Lock()
			running++
			n := len(starts)
			starts = append(starts, time.Since(start))
			concurrent := running
			mu.Unlock()
			if concurrent > 1 {
				return nil, fmt.Errorf("%d scrapes at once", concurrent)
			}
			if n == 1 {
				time.Sleep(25 * time.Second) // a scrape slower than two intervals
			}
			mu.Lock()
			running--
			mu.Unlock()
			return append(buf, "# TYPE g gauge\ng 1\n"...), nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		time.Sleep(55 * time.Second)
		synctest.Wait()
		cancel()
		require.NoError(t, <-done)

		mu.Lock()
		defer mu.Unlock()
		s := time.Second
		// Ticks at 10, 20, 30...: the scrape of 10s ends at 35s; the tick
		// of 20s waited for it (30s was dropped), then 40s and 50s.
		require.Equal(t, []time.Duration{0, 10 * s, 35 * s, 40 * s, 50 * s}, starts)
		_, records, _ := rec.take()
		require.Len(t, records, 5)
	})
}

func TestCollectorOnce(t *testing.T) {
	pages := readScrapes(t)
	tests := []struct {
		schema string
		want   string // a line that must be in the output, timestamp cut
	}{
		{"traefik", "traefik.service.requests.total,code=404,host=test,method=GET,protocol=http,service=api-svc@file count=20"},
		{"prometheus", "traefik_service_requests_total,code=404,host=test,method=GET,protocol=http,service=api-svc@file value=36"},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig("http://127.0.0.1:9/metrics")
				cfg.Schema = tt.schema
				c, _ := newTestCollector(t, cfg, &appendRecorder{})
				calls := 0
				c.fetch = wholePage(func(ctx context.Context, url string, buf []byte) ([]byte, error) {
					calls++
					return append(buf, pages[calls-1]...), nil
				})
				var out bytes.Buffer
				start := time.Now()
				require.NoError(t, c.Once(context.Background(), &out))
				lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
				var cut []string
				for _, l := range lines {
					cut = append(cut, l[:strings.LastIndexByte(l, ' ')])
				}
				require.Contains(t, cut, tt.want)
				if tt.schema == "traefik" {
					require.Equal(t, 2, calls)
					require.Equal(t, cfg.Traefik.Interval, time.Since(start), "one interval between the two scrapes")
				} else {
					require.Equal(t, 1, calls)
				}
			})
		})
	}
}

// TestCollectorEmptyLabels: a sample with an empty label value is written
// without the label, and the label is counted in empty_labels_total.
func TestCollectorEmptyLabels(t *testing.T) {
	page := "# TYPE traefik_tls_certs_not_after gauge\n" +
		`traefik_tls_certs_not_after{cn="",sans="a.example",serial="1f"} 1.8e+09` + "\n" +
		`traefik_tls_certs_not_after{cn="b.example",sans="b.example",serial="2f"} 1.9e+09` + "\n"
	srv := pageServer(t, page)
	rec := &appendRecorder{}
	c, _ := newTestCollector(t, testConfig(srv.URL+"/metrics"), rec)
	for i := range 2 {
		tick(c, t0.Add(time.Duration(i)*10*time.Second))
	}
	all, _, _ := rec.take()
	require.Contains(t, all, "traefik.tls.certs.notAfterTimestamp,host=test,sans=a.example,serial=1f value=1.8e+09 1700000010\n")
	require.Equal(t, 4, strings.Count(all, "\n"))
	tg := c.sources[0].targets[srv.URL+"/metrics"]
	require.Equal(t, 2.0, tg.m.emptyLabels.Value(), "one per scrape")
	for r := range NumSkipReasons {
		require.Zero(t, tg.m.skipped[r].Value(), r.String())
	}
}

// wholePage turns a fake fetch of a whole text page into the collector's
// fetch, which hands the body to a reader.
func wholePage(f func(ctx context.Context, url string, buf []byte) ([]byte, error)) func(context.Context, string, func(io.Reader, Format) error) error {
	return func(ctx context.Context, url string, read func(io.Reader, Format) error) error {
		body, err := f(ctx, url, nil)
		if err != nil {
			return err
		}
		return read(bytes.NewReader(body), FormatText)
	}
}

// TestCollectorStreamTooLarge: a page over traefik.max_body, read as it
// arrives, is a too_large scrape; the samples parsed before the limit are
// written whole, as those before a parse error are.
func TestCollectorStreamTooLarge(t *testing.T) {
	var page strings.Builder
	page.WriteString("# TYPE traefik_g gauge\n")
	const n = 100000
	for i := range n {
		fmt.Fprintf(&page, "traefik_g{i=\"%06d\"} 1\n", i)
	}
	srv := pageServer(t, page.String())
	cfg := testConfig(srv.URL + "/metrics")
	cfg.Traefik.MaxBody = config.MiB
	rec := &appendRecorder{}
	c, logs := newTestCollector(t, cfg, rec)
	tick(c, t0)
	require.Regexp(t, "level=WARN.*kind=too_large", logs.String())
	require.Equal(t, 1.0, c.m.scrapes.WithLabelValues(srv.URL+"/metrics", "too_large").Value())
	all, _, _ := rec.take()
	lines := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
	require.Greater(t, len(lines), 1000)
	require.Less(t, len(lines), n)
	for i, l := range lines {
		require.Equal(t, fmt.Sprintf("traefik.g,host=test,i=%06d value=1 1700000000", i), l)
	}
}

// TestCollectorMaxSeries runs a target over traefik.max_series: the series
// over it are counted every scrape, logged once when it starts and once
// when it ends.
func TestCollectorMaxSeries(t *testing.T) {
	page := func(v int, names ...string) string {
		return strings.NewReplacer("# TYPE c ", "# TYPE traefik_c ", "\nc_total", "\ntraefik_c_total").Replace(counterPage(v, names...))
	}
	over := page(1, "a", "b", "c")
	srv := pageServer(t, over, over, over, page(2, "a", "b"))
	cfg := testConfig(srv.URL + "/metrics")
	cfg.Traefik.MaxSeries = 2
	rec := &appendRecorder{}
	c, logs := newTestCollector(t, cfg, rec)
	for i := range 4 {
		tick(c, t0.Add(time.Duration(i)*10*time.Second))
	}
	tg := c.sources[0].targets[srv.URL+"/metrics"]
	require.Equal(t, 3.0, tg.m.skipped[SkipSeriesLimit].Value())
	require.Equal(t, 2.0, tg.m.series.Value(), "state_series")
	require.Equal(t, 1, strings.Count(logs.String(), "more series than traefik.max_series"), logs.String())
	require.Equal(t, 1, strings.Count(logs.String(), "fit in traefik.max_series again"), logs.String())
	all, _, _ := rec.take()
	require.NotContains(t, all, "s=c")
}
