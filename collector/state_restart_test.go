package collector

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink/diskqueue"
)

// restartStep is one thing that happens to a bridge on a durable queue.
type restartStep struct {
	// restart closes the queue and starts a new bridge (queue, collector,
	// converter) on the same directory before the scrape.
	restart bool
	// tear cuts the last bytes of the newest segment before the restart,
	// as a crash in the middle of writing the last append does.
	tear bool
	// keep leaves what the scrape appended unsent (undrained), so that a
	// tear in the next step can reach it.
	keep bool
	// damage saves an undecodable state for the target before the restart.
	damage bool
	// tags replaces the configured tags from this step on.
	tags map[string]string
	page string
	at   time.Duration
	// want is what the queue holds after the scrape: a golden file's
	// lines with their timestamps set to ts, or nothing.
	golden string
	ts     int64
	// check, when set, also inspects what the queue holds.
	check func(t *testing.T, lp string)
}

// stateOnly hides the group methods of a queue: the collector hands it
// each scrape whole, with AppendWithState.
type stateOnly struct{ q *diskqueue.Queue }

func (s stateOnly) Append(lines []byte, n int) error { return s.q.Append(lines, n) }
func (s stateOnly) AppendWithState(lines []byte, n int, key string, state []byte) error {
	return s.q.AppendWithState(lines, n, key, state)
}
func (s stateOnly) LoadState(key string) ([]byte, error) { return s.q.LoadState(key) }

// countGroups is a queue that counts the groups begun and the records
// appended to them, and can run hook after an AppendGroup.
type countGroups struct {
	*diskqueue.Queue
	begun, records int
	hook           func(records int)
}

func (c *countGroups) TryBeginGroup(key string) (bool, error) {
	ok, err := c.Queue.TryBeginGroup(key)
	if ok {
		c.begun++
	}
	return ok, err
}

func (c *countGroups) AppendGroup(key string, lines []byte, n int) error {
	err := c.Queue.AppendGroup(key, lines, n)
	c.records++
	if c.hook != nil {
		c.hook(c.records)
	}
	return err
}

// TestCollectorStateAcrossRestarts runs bridges one after the other on one
// disk queue, as restarts of the process do, over a real HTTP Traefik page
// server, and reads back what the queue holds after each scrape. Each case
// runs with the scrape handed to the queue whole and streamed as a group
// of records, a few lines at a time.
func TestCollectorStateAcrossRestarts(t *testing.T) {
	pages := readScrapes(t)
	golden := func(i int) string {
		return filepath.Join("testdata", "golden", "traefik", strings.TrimSuffix(scrapeFixtures[i], ".prom")+".lp")
	}
	onlyGauges := func(t *testing.T, lp string) {
		require.NotEmpty(t, lp)
		require.NotContains(t, lp, " count=", "a baseline writes no counter")
	}
	const (
		s0 = 1700000000
		// What api-svc answered 404 to GET: 36, then 56; 5 after Traefik restarted.
		api404 = "traefik.service.requests.total,code=404,host=test,method=GET,protocol=http,service=api-svc@file count="
	)
	tests := []struct {
		name  string
		steps []restartStep
	}{
		{"a restart continues the deltas, a Traefik restart counts from zero", []restartStep{
			{page: pages[0], golden: golden(0), ts: s0},
			{restart: true, page: pages[1], at: 10 * time.Second, golden: golden(1), ts: s0 + 10,
				check: func(t *testing.T, lp string) { require.Contains(t, lp, api404+"20 ") }},
			{restart: true, page: pages[2], at: 20 * time.Second, golden: golden(2), ts: s0 + 20,
				check: func(t *testing.T, lp string) { require.Contains(t, lp, api404+"5 ") }},
		}},
		{"a restart within the same second writes a later timestamp", []restartStep{
			{page: pages[0], golden: golden(0), ts: s0},
			{restart: true, page: pages[1], at: 400 * time.Millisecond, golden: golden(1), ts: s0 + 1},
		}},
		{"the clock going back across a restart writes a later timestamp", []restartStep{
			{page: pages[0], at: 10 * time.Second, golden: golden(0), ts: s0 + 10},
			{restart: true, page: pages[1], golden: golden(1), ts: s0 + 11},
		}},
		// 42 lines in records of 7: the state rides on the last one. Appends
		// not yet sent (keep) are what a crash can tear.
		{"a crash inside an append loses its lines and its state together", []restartStep{
			{page: pages[0], golden: golden(0), ts: s0},
			{page: pages[1], at: 10 * time.Second, keep: true},
			{restart: true, tear: true, page: pages[1], at: 20 * time.Second, golden: golden(1), ts: s0 + 20,
				check: func(t *testing.T, lp string) { require.Contains(t, lp, api404+"20 ") }},
		}},
		{"a crash inside an append keeps the appends before it with their state", []restartStep{
			{page: pages[0], golden: golden(0), ts: s0},
			{page: pages[1], at: 10 * time.Second, keep: true},
			{page: pages[2], at: 20 * time.Second, keep: true},
			{restart: true, tear: true, page: pages[2], at: 30 * time.Second,
				check: func(t *testing.T, lp string) {
					want := restamp(readFile(t, golden(1)), s0+10) + restamp(readFile(t, golden(2)), s0+30)
					require.Equal(t, want, lp)
				}},
		}},
		{"a damaged state starts with a baseline", []restartStep{
			{page: pages[0], golden: golden(0), ts: s0},
			{restart: true, damage: true, page: pages[1], at: 10 * time.Second, check: onlyGauges},
			{page: pages[2], at: 20 * time.Second, golden: golden(2), ts: s0 + 20},
		}},
		{"other tags do not take the state of the old ones", []restartStep{
			{page: pages[0], golden: golden(0), ts: s0},
			{restart: true, tags: map[string]string{"region": "eu"}, page: pages[1], at: 10 * time.Second, check: onlyGauges},
		}},
		{"a state older than series_ttl keeps the series on the page and forgets the others", []restartStep{
			{page: "# TYPE traefik_c counter\ntraefik_c{s=\"a\"} 10\ntraefik_c{s=\"b\"} 10\n"},
			{restart: true, page: "# TYPE traefik_c counter\ntraefik_c{s=\"a\"} 15\n", at: 2 * time.Hour,
				check: func(t *testing.T, lp string) { require.Equal(t, "traefik.c,host=test,s=a count=5 1700007200\n", lp) }},
			{page: "# TYPE traefik_c counter\ntraefik_c{s=\"a\"} 15\ntraefik_c{s=\"b\"} 12\n", at: 2*time.Hour + 10*time.Second,
				check: func(t *testing.T, lp string) { require.Equal(t, "traefik.c,host=test,s=b count=12 1700007210\n", lp) }},
		}},
	}
	for _, tt := range tests {
		for _, streamed := range []bool{false, true} {
			name := tt.name + "/whole"
			if streamed {
				name = tt.name + "/streamed"
			}
			t.Run(name, func(t *testing.T) { runRestartSteps(t, tt.steps, streamed) })
		}
	}
}

func runRestartSteps(t *testing.T, steps []restartStep, streamed bool) {
	var page string
	srv := httptest200(t, func() string { return page })
	dir := t.TempDir()
	cfg := testConfig(srv.URL + "/metrics")
	var q *diskqueue.Queue
	var c *Collector
	groups := 0
	var cg *countGroups
	start := func() {
		var err error
		q, err = diskqueue.Open(dir, diskqueue.Options{MaxBytes: 64 << 20, RecordMaxLines: cfg.Batch.MaxLines, RecordMaxBytes: int(cfg.Batch.MaxBytes)}, nil)
		require.NoError(t, err)
		if cg != nil {
			groups += cg.begun
		}
		if streamed {
			cg = &countGroups{Queue: q}
			c, _ = newTestCollector(t, cfg, cg)
			c.flushEvery = 1 // after every sample
		} else {
			c, _ = newTestCollector(t, cfg, stateOnly{q})
		}
	}
	start()
	if streamed {
		t.Cleanup(func() {
			require.Positive(t, groups+cg.begun, "no group was begun")
		})
	}
	t.Cleanup(func() { _ = q.Close() })
	for i, st := range steps {
		if st.tags != nil {
			cfg.Tags = st.tags
		}
		if st.damage {
			tg := c.sources[0].targets[srv.URL+"/metrics"]
			require.NoError(t, q.AppendWithState(nil, 0, tg.stateKey, []byte("TIBS\x01 not a state")))
		}
		if st.restart {
			require.NoError(t, q.Close())
			if st.tear {
				tearLastSegment(t, dir)
			}
			start()
		}
		page = st.page
		tick(c, t0.Add(st.at))
		if st.keep {
			continue
		}
		lp := drainQueue(t, q)
		if st.golden != "" {
			require.Equal(t, restamp(readFile(t, st.golden), st.ts), lp, "step %d", i)
		}
		if st.check != nil {
			st.check(t, lp)
		}
	}
}

// TestCollectorStateKey checks what names a target's state: the schema,
// the URL without credentials and what decides the series keys.
func TestCollectorStateKey(t *testing.T) {
	base := testConfig("http://u:secret@traefik:9100/metrics")
	tags := map[string]string{"host": "web-1"}
	key := stateKey(base, "http://traefik:9100/metrics", tags)
	require.NotContains(t, key, "secret")
	require.True(t, strings.HasPrefix(key, "traefik http://traefik:9100/metrics "), key)
	tests := []struct {
		name string
		mod  func(*config.Config, map[string]string)
		same bool
	}{
		{"same configuration", func(*config.Config, map[string]string) {}, true},
		{"other retry settings", func(c *config.Config, _ map[string]string) { c.Retry.MaxBackoff = time.Hour }, true},
		{"other schema", func(c *config.Config, _ map[string]string) { c.Schema = config.SchemaPrometheus }, false},
		{"other precision", func(c *config.Config, _ map[string]string) { c.InfluxDB.Precision = "ms" }, false},
		{"other host", func(_ *config.Config, m map[string]string) { m["host"] = "web-2" }, false},
		{"one more tag", func(_ *config.Config, m map[string]string) { m["region"] = "eu" }, false},
		{"other families", func(c *config.Config, _ map[string]string) { c.Metrics.Exclude = []string{"traefik_router_*"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := *base
			m := map[string]string{"host": "web-1"}
			tt.mod(&cfg, m)
			require.Equal(t, tt.same, stateKey(&cfg, "http://traefik:9100/metrics", m) == key)
		})
	}
}

// TestCollectorNoStateStore: without a StateStore (the memory buffer), or
// in a cumulative schema, a new collector starts with a baseline.
func TestCollectorNoStateStore(t *testing.T) {
	pages := readScrapes(t)
	tests := []struct {
		name      string
		schema    string
		durable   bool
		wantCount bool
	}{
		{"memory buffer, traefik schema", config.SchemaTraefik, false, false},
		{"disk buffer, prometheus schema: cumulative, no state", config.SchemaPrometheus, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var page string
			srv := httptest200(t, func() string { return page })
			cfg := testConfig(srv.URL + "/metrics")
			cfg.Schema = tt.schema
			var out Appender = &appendRecorder{}
			var q *diskqueue.Queue
			if tt.durable {
				var err error
				q, err = diskqueue.Open(t.TempDir(), diskqueue.Options{MaxBytes: 64 << 20}, nil)
				require.NoError(t, err)
				t.Cleanup(func() { _ = q.Close() })
				out = q
			}
			c, _ := newTestCollector(t, cfg, out)
			require.Nil(t, c.store)
			page = pages[0]
			tick(c, t0)
			if q != nil {
				st, err := q.LoadState(c.sources[0].targets[srv.URL+"/metrics"].stateKey)
				require.NoError(t, err)
				require.Nil(t, st)
			}
		})
	}
}

// httptest200 serves whatever page returns at the time of the request.
func httptest200(t *testing.T, page func() string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(page()))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(b)
}

// drainQueue takes and commits everything the queue holds.
func drainQueue(t *testing.T, q *diskqueue.Queue) string {
	t.Helper()
	var all strings.Builder
	for q.Stats().Records > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := q.Next(ctx, 1000, 1<<20)
		cancel()
		require.NoError(t, err)
		all.Write(b.Data)
		require.NoError(t, q.Commit(b))
	}
	return all.String()
}

// tearLastSegment cuts the last 16 bytes of the newest segment: the end of
// the last record of the last append.
func tearLastSegment(t *testing.T, dir string) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	sort.Strings(segs)
	last := segs[len(segs)-1]
	fi, err := os.Stat(last)
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(16))
	require.NoError(t, os.Truncate(last, fi.Size()-16))
}

var lpTimestamp = regexp.MustCompile(` [0-9]+\n`)

// restamp sets the timestamp of every line of lp to ts.
func restamp(lp string, ts int64) string {
	return lpTimestamp.ReplaceAllString(lp, " "+strconv.FormatInt(ts, 10)+"\n")
}

// TestCollectorStateDNSTargets: each address of a dns+ URL keeps its own
// state; an address gone for traefik.series_ttl leaves an empty one, so it
// starts with a baseline when it comes back after a restart, as it would
// without the restart. The addresses are scraped concurrently into one
// queue, which takes one group at a time.
func TestCollectorStateDNSTargets(t *testing.T) {
	cfg := testConfig("dns+http://traefik-headless.ingress.svc:9100/metrics")
	cfg.Traefik.SeriesTTL = time.Minute
	dir := t.TempDir()
	var value atomic.Int64
	start := func(addrs ...string) (*Collector, *diskqueue.Queue) {
		q, err := diskqueue.Open(dir, diskqueue.Options{MaxBytes: 1 << 20}, nil)
		require.NoError(t, err)
		c, _ := newTestCollector(t, cfg, q)
		// The targets are scraped at the same time and stream their lines:
		// one opens a group, the other holds its lines until that ends.
		c.flushEvery = 1
		c.resolver = &fakeResolver{addrs: addrs}
		c.fetch = wholePage(func(ctx context.Context, url string, buf []byte) ([]byte, error) {
			return fmt.Appendf(buf, "# TYPE traefik_c counter\ntraefik_c %d\n", value.Load()), nil
		})
		return c, q
	}

	c, q := start("10.0.0.1", "10.0.0.2")
	value.Store(10)
	tick(c, t0)
	value.Store(15)
	tick(c, t0.Add(10*time.Second))
	require.Equal(t, []string{
		"traefik.c,host=test,instance=10.0.0.1:9100 count=5 1700000010",
		"traefik.c,host=test,instance=10.0.0.2:9100 count=5 1700000010",
	}, sortedLines(drainQueue(t, q)))
	c.resolver = &fakeResolver{addrs: []string{"10.0.0.1"}}
	tick(c, t0.Add(2*time.Minute)) // 10.0.0.2 gone
	require.Empty(t, drainQueue(t, q))
	require.NoError(t, q.Close())

	c, q = start("10.0.0.1", "10.0.0.2")
	t.Cleanup(func() { _ = q.Close() })
	value.Store(20)
	tick(c, t0.Add(3*time.Minute))
	require.Equal(t, []string{"traefik.c,host=test,instance=10.0.0.1:9100 count=5 1700000180"}, sortedLines(drainQueue(t, q)),
		"10.0.0.1 continues, 10.0.0.2 starts with a baseline")
}

func sortedLines(lp string) []string {
	if lp == "" {
		return nil
	}
	l := strings.Split(strings.TrimSuffix(lp, "\n"), "\n")
	sort.Strings(l)
	return l
}

// TestCollectorCrashInsideAGroup: the bridge dies while a scrape's records
// are being streamed to the disk queue, its state not yet written. What a
// kill -9 leaves is what the files hold at that moment (the page cache
// survives the process); a copy of the directory taken between two records
// of the group stands for it. The bridge started on the copy has lost that
// scrape with its state, so the next scrape writes the whole increase since
// the scrape before: nothing lost, nothing counted twice.
func TestCollectorCrashInsideAGroup(t *testing.T) {
	pages := readScrapes(t)
	var page string
	srv := httptest200(t, func() string { return page })
	cfg := testConfig(srv.URL + "/metrics")
	dir, crashed := t.TempDir(), t.TempDir()
	open := func(dir string) *diskqueue.Queue {
		q, err := diskqueue.Open(dir, diskqueue.Options{MaxBytes: 64 << 20, RecordMaxLines: cfg.Batch.MaxLines, RecordMaxBytes: int(cfg.Batch.MaxBytes)}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = q.Close() })
		return q
	}
	q := open(dir)
	cg := &countGroups{Queue: q}
	c, _ := newTestCollector(t, cfg, cg)
	c.flushEvery = 1

	page = pages[0]
	tick(c, t0)
	drainQueue(t, q)
	copied := 0
	cg.records = 0
	cg.hook = func(records int) {
		if records == 2 {
			copied = copyDir(t, dir, crashed)
		}
	}
	page = pages[1]
	tick(c, t0.Add(10*time.Second))
	require.Positive(t, copied, "the group had no second record")
	require.Greater(t, cg.records, 2, "the copy was not taken inside the group")

	q2 := open(crashed)
	require.Zero(t, q2.Stats().Records, "a part of the scrape cut short was kept")
	c2, _ := newTestCollector(t, cfg, q2)
	c2.flushEvery = 1
	tick(c2, t0.Add(20*time.Second))
	require.Equal(t, restamp(readFile(t, filepath.Join("testdata", "golden", "traefik", strings.TrimSuffix(scrapeFixtures[1], ".prom")+".lp")), 1700000020),
		drainQueue(t, q2))
}

// copyDir copies the files of src into dst and returns how many.
func copyDir(t *testing.T, src, dst string) int {
	t.Helper()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return len(entries)
}
