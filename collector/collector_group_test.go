package collector

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink/diskqueue"
)

// groupStep is one scrape of TestCollectorGroupLikeWhole: the page served,
// and how it goes wrong.
type groupStep struct {
	page   string
	status int  // answered instead of the page when not 0
	broken bool // the body breaks off at the end of page (Content-Length says more)
}

// groupRun is what a run of steps left: per step, what the queue held
// (drained), the saved state and the target's counters.
type groupRun struct {
	lp, state      []string
	appendErrors   float64
	points         float64
	scrapes        map[string]float64
	dropped        map[string]int64
	errorLogs      int
	groupsBegun    int
	groupRecords   int
	groupLeftOpen  bool
	takesAgainLogs int
}

// TestCollectorGroupLikeWhole: a scrape streamed to the disk queue as a
// group of records leaves exactly what the same scrape handed over whole
// (AppendWithState) leaves: the same lines, the same saved state, the same
// counters and logs, when the scrape succeeds and when it goes wrong (a
// parse error or a broken body midway: the lines before it are written with
// the state; the queue refusing a scrape over its cap: counted once per
// change and logged; a failed request: nothing written, no group left open).
func TestCollectorGroupLikeWhole(t *testing.T) {
	pages := readScrapes(t)
	cut := func(p string, frac float64) string {
		i := strings.LastIndexByte(p[:int(float64(len(p))*frac)], '\n') + 1
		return p[:i]
	}
	big1, big2 := string(traefikpage.Generate(5, 1)), string(traefikpage.Generate(5, 2))
	// The parser reads the body a window at a time: to break off after
	// lines were converted, the page must be larger than a window.
	huge1, huge2 := string(traefikpage.Generate(20, 1)), string(traefikpage.Generate(20, 2))
	tests := []struct {
		name     string
		maxBytes int64
		steps    []groupStep
		// check proves that the case did what it says, in the whole run.
		check func(t *testing.T, r groupRun)
	}{
		{name: "scrapes", maxBytes: 64 << 20, steps: []groupStep{{page: pages[0]}, {page: pages[1]}, {page: pages[2]}},
			check: func(t *testing.T, r groupRun) { require.Equal(t, map[string]float64{"success": 3}, r.scrapes) }},
		{name: "parse error midway", maxBytes: 64 << 20, steps: []groupStep{
			{page: pages[0]}, {page: cut(pages[1], 0.6) + "traefik_broken{{{ 1\n"}, {page: pages[2]},
		}, check: func(t *testing.T, r groupRun) {
			require.Equal(t, 1.0, r.scrapes["parse"])
			require.NotEmpty(t, r.lp[1], "the lines before the error")
			require.NotEqual(t, r.state[0], r.state[1])
		}},
		{name: "body breaks off midway", maxBytes: 64 << 20, steps: []groupStep{
			{page: huge1}, {page: cut(huge2, 0.5), broken: true}, {page: huge1},
		}, check: func(t *testing.T, r groupRun) {
			require.Equal(t, 1.0, r.scrapes["error"])
			require.NotEmpty(t, r.lp[1], "the lines before the break")
			require.NotEqual(t, r.state[0], r.state[1])
		}},
		{name: "request fails", maxBytes: 64 << 20, steps: []groupStep{
			{page: pages[0]}, {status: http.StatusInternalServerError}, {page: pages[1]},
		}, check: func(t *testing.T, r groupRun) {
			require.Equal(t, 1.0, r.scrapes["http_5xx"])
			require.Empty(t, r.lp[1])
			require.Equal(t, r.state[0], r.state[1], "a state was saved for a scrape that converted nothing")
		}},
		{name: "scrape over the cap", maxBytes: 128 << 10, steps: []groupStep{
			{page: big1}, {page: big2}, {page: big1}, {page: pages[0]}, {page: pages[1]},
		}, check: func(t *testing.T, r groupRun) {
			require.Equal(t, 2.0, r.appendErrors)
			require.Positive(t, r.dropped[diskqueue.ReasonBufferFull])
			require.Equal(t, 1, r.errorLogs, "logged once per change")
			require.Equal(t, 1, r.takesAgainLogs)
			require.NotEmpty(t, r.lp[4])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole := runGroupSteps(t, tt.steps, tt.maxBytes, false)
			streamed := runGroupSteps(t, tt.steps, tt.maxBytes, true)
			require.Zero(t, whole.groupsBegun)
			require.Positive(t, streamed.groupsBegun, "no group was begun")
			require.Positive(t, streamed.groupRecords, "no record was streamed")
			require.False(t, streamed.groupLeftOpen, "a group was left open")
			streamed.groupsBegun, streamed.groupRecords = 0, 0
			require.Equal(t, whole, streamed)
			tt.check(t, whole)
		})
	}
}

func runGroupSteps(t *testing.T, steps []groupStep, maxBytes int64, streamed bool) groupRun {
	t.Helper()
	var step groupStep
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if step.status != 0 {
			w.WriteHeader(step.status)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if step.broken {
			w.Header().Set("Content-Length", strconv.Itoa(len(step.page)+100))
		}
		_, _ = w.Write([]byte(step.page))
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL + "/metrics")
	cfg.Traefik.Timeout = 5 * time.Second
	q, err := diskqueue.Open(t.TempDir(), diskqueue.Options{MaxBytes: maxBytes, RecordMaxLines: cfg.Batch.MaxLines, RecordMaxBytes: int(cfg.Batch.MaxBytes)}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	cg := &countGroups{Queue: q}
	var c *Collector
	var logs *syncBuffer
	if streamed {
		c, logs = newTestCollector(t, cfg, cg)
		c.flushEvery = 1
	} else {
		c, logs = newTestCollector(t, cfg, stateOnly{q})
	}
	tg := c.sources[0].targets[srv.URL+"/metrics"]
	run := groupRun{scrapes: map[string]float64{}}
	for i, st := range steps {
		step = st
		tick(c, t0.Add(time.Duration(i)*10*time.Second))
		run.lp = append(run.lp, drainQueue(t, q))
		b, err := q.LoadState(tg.stateKey)
		require.NoError(t, err)
		run.state = append(run.state, string(b))
		// No group may stay open past a scrape: it would stop every append.
		ok, err := q.TryBeginGroup("probe")
		require.NoError(t, err)
		if ok {
			q.AbortGroup("probe")
		} else {
			run.groupLeftOpen = true
		}
	}
	run.appendErrors = tg.m.appendErrors.Value()
	run.points = tg.m.points.Value()
	c.m.scrapes.Collect(func(f metrics.Family) {
		for _, m := range f.Metrics {
			var kind string
			for _, l := range m.Labels {
				if l.Name != "target" && l.Value != tg.label {
					kind = l.Value
				}
			}
			run.scrapes[kind] += m.Value
		}
	})
	run.dropped = q.Stats().DroppedLines
	run.errorLogs = strings.Count(logs.String(), "level=ERROR")
	run.takesAgainLogs = strings.Count(logs.String(), `msg="the buffer takes points again"`)
	run.groupsBegun, run.groupRecords = cg.begun, cg.records
	return run
}
