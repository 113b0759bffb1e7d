package sink

// These tests use fake InfluxDB servers, each for an answer a real influxd
// cannot be made to give on demand: 500 and 503 with Retry-After (write
// throttling and server trouble), a server that never answers, and 413 at a
// chosen size with a check that every line arrives exactly once. They run in
// a synctest bubble, so the server is an httptest.Server over in-memory pipes
// (a loopback socket is not "durably blocking" and would stop fake time).

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8086} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, syscall.ECONNREFUSED
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// request is what a fake server saw.
type request struct {
	at       time.Time
	lines    []string
	auth     string
	rawQuery string
	gzip     bool
}

// fake is a scripted InfluxDB: answer decides each reply from the request
// number (0-based) and the lines received.
type fake struct {
	mu       sync.Mutex
	requests []request
	answer   func(n int, r *request, w http.ResponseWriter, req *http.Request)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r := request{at: time.Now(), auth: req.Header.Get("Authorization"), rawQuery: req.URL.RawQuery}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		r.gzip = true
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		r.lines = append(r.lines, sc.Text())
	}
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, r)
	f.mu.Unlock()
	f.answer(n, &r, w, req)
}

func (f *fake) seen() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

// runFake serves f for h's sink; call the returned stop before the bubble ends.
func runFake(h *harness, f *fake) (stop func()) {
	l := newPipeListener()
	srv := httptest.NewUnstartedServer(f)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	h.sink.client.Transport.(*http.Transport).DialContext = l.dial
	return func() {
		h.sink.client.CloseIdleConnections()
		srv.Close()
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig("http://127.0.0.1:8086")
		cfg.InfluxDB.Username, cfg.InfluxDB.Password = "writer", "s3cret-pw"
		cfg.Retry.MinBackoff, cfg.Retry.MaxBackoff = 10*time.Millisecond, time.Second
		h := newHarness(t, cfg)
		f := &fake{answer: func(n int, _ *request, w http.ResponseWriter, _ *http.Request) {
			if n == 0 {
				w.Header().Set("Retry-After", "7")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `{"error":"write throttled"}`)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}}
		stop := runFake(h, f)
		defer stop()

		h.appendLines(t, "m v=1 1", "m v=2 2")
		require.NoError(t, flushFor(h, time.Hour))

		reqs := f.seen()
		require.Len(t, reqs, 2)
		// Retry-After (7s) wins over the backoff (at most 10ms here) and over max_backoff.
		require.Equal(t, 7*time.Second, reqs[1].at.Sub(reqs[0].at))
		require.Equal(t, []string{"m v=1 1", "m v=2 2"}, reqs[1].lines)
		for _, r := range reqs {
			require.True(t, r.gzip, "gzip is on by default")
			require.Equal(t, "Basic d3JpdGVyOnMzY3JldC1wdw==", r.auth, "credentials go in the Basic auth header")
			require.Equal(t, "db=tib&precision=s", r.rawQuery, "and never in the URL")
		}
		require.Equal(t, 1.0, h.metric(t, "traefik_influxdb_bridge_writes_total", "status_class", "5xx"))
		require.Equal(t, 1.0, h.metric(t, "traefik_influxdb_bridge_writes_total", "status_class", "2xx"))
		require.Equal(t, 1.0, h.metric(t, "traefik_influxdb_bridge_retries_total"))
		require.Equal(t, 2.0, h.metric(t, "traefik_influxdb_bridge_points_written_total"))
		require.Equal(t, 1.0, h.metric(t, "traefik_influxdb_bridge_influxdb_up"))
		require.Len(t, h.logs.find(slog.LevelWarn, "influxdb unavailable"), 1, h.logs.all())
		require.Len(t, h.logs.find(slog.LevelInfo, "answering again"), 1, h.logs.all())
		require.NotContains(t, h.logs.all(), "s3cret-pw")
	})
}

func TestBackoffTiming(t *testing.T) {
	const failures = 6
	tests := []struct {
		name  string
		randN func(n int64) int64
		want  []time.Duration // waits between attempts
	}{
		// min 1s, max 5s: the ceilings are 1s, 2s, 4s, 5s, 5s, 5s.
		{name: "jitter at its ceiling", randN: func(n int64) int64 { return n - 1 }, want: []time.Duration{1, 2, 4, 5, 5, 5}},
		{name: "jitter at its floor", randN: func(int64) int64 { return 0 }, want: []time.Duration{1, 1, 1, 1, 1, 1}},
		{name: "jitter halfway", randN: func(n int64) int64 { return n / 2 }, want: []time.Duration{1, 1500, 2500, 3000, 3000, 3000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				waits := runFailures(t, failures, tt.randN)
				want := make([]time.Duration, len(tt.want))
				for i, w := range tt.want {
					if w < 100 {
						want[i] = w * time.Second
					} else {
						want[i] = w * time.Millisecond
					}
				}
				require.Equal(t, want, waits)
			})
		})
	}
	t.Run("real jitter stays within its bounds", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ceilings := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
			distinct := map[time.Duration]bool{}
			for range 5 {
				for i, w := range runFailures(t, failures, rand.Int64N) {
					require.GreaterOrEqual(t, w, time.Second)
					require.LessOrEqual(t, w, ceilings[i])
					distinct[w] = true
				}
			}
			require.Greater(t, len(distinct), 10, "waits are spread, not in step")
		})
	})
}

// runFailures has a server answer 500 failures times, then 204, and returns
// the waits between attempts with min_backoff 1s and max_backoff 5s.
func runFailures(t *testing.T, failures int, randN func(int64) int64) []time.Duration {
	cfg := testConfig("http://127.0.0.1:8086")
	cfg.Retry.MinBackoff, cfg.Retry.MaxBackoff = time.Second, 5*time.Second
	h := newHarness(t, cfg)
	h.sink.randN = randN
	f := &fake{answer: func(n int, _ *request, w http.ResponseWriter, _ *http.Request) {
		if n < failures {
			http.Error(w, `{"error":"timeout"}`, http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}}
	stop := runFake(h, f)
	defer stop()
	h.appendLines(t, "m v=1 1")
	require.NoError(t, flushFor(h, time.Hour))
	reqs := f.seen()
	require.Len(t, reqs, failures+1)
	var waits []time.Duration
	for i := 1; i < len(reqs); i++ {
		waits = append(waits, reqs[i].at.Sub(reqs[i-1].at))
	}
	require.Equal(t, float64(failures), h.metric(t, "traefik_influxdb_bridge_retries_total"))
	require.Equal(t, float64(failures), h.metric(t, "traefik_influxdb_bridge_writes_total", "status_class", "5xx"))
	require.Len(t, h.logs.find(slog.LevelWarn, "influxdb unavailable"), 1, "logged once per change of state:\n"+h.logs.all())
	return waits
}

func TestHangingServerTimesOutAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig("http://127.0.0.1:8086")
		cfg.InfluxDB.Timeout = 2 * time.Second
		cfg.Retry.MinBackoff, cfg.Retry.MaxBackoff = 100*time.Millisecond, 100*time.Millisecond
		h := newHarness(t, cfg)
		f := &fake{answer: func(n int, _ *request, w http.ResponseWriter, req *http.Request) {
			if n == 0 {
				<-req.Context().Done() // hang until the client gives up
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}}
		stop := runFake(h, f)
		defer stop()

		h.appendLines(t, "m v=1 1")
		require.NoError(t, flushFor(h, time.Hour))
		reqs := f.seen()
		require.Len(t, reqs, 2)
		require.Equal(t, 2*time.Second+100*time.Millisecond, reqs[1].at.Sub(reqs[0].at), "influxdb.timeout, then the backoff")
		require.Equal(t, 1.0, h.metric(t, "traefik_influxdb_bridge_writes_total", "status_class", "error"))
		warn := h.logs.find(slog.LevelWarn, "influxdb unavailable")
		require.Len(t, warn, 1, h.logs.all())
		require.Contains(t, warn[0].Attrs, "reason=timeout")
		require.Equal(t, 1.0, h.metric(t, "traefik_influxdb_bridge_points_written_total"))
	})
}

func TestRunStopsOnCancelAndFlushResends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testConfig("http://127.0.0.1:8086"))
		var down = true
		var mu sync.Mutex
		f := &fake{answer: func(_ int, _ *request, w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if down {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}}
		stop := runFake(h, f)
		defer stop()

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- h.sink.Run(ctx) }()
		h.appendLines(t, "m v=1 1")
		time.Sleep(time.Second) // fake time: several failed attempts
		require.Error(t, h.sink.Ready())
		cancel()
		require.NoError(t, <-done, "Run returns nil on cancel")
		require.Equal(t, int64(1), h.q.Stats().Lines, "the failing batch stays queued")

		mu.Lock()
		down = false
		mu.Unlock()
		require.NoError(t, flushFor(h, time.Hour))
		require.Zero(t, h.q.Stats().Lines)
		require.NoError(t, h.sink.Ready())
		reqs := f.seen()
		require.Equal(t, []string{"m v=1 1"}, reqs[len(reqs)-1].lines)
	})
}

func TestTooLargeSplitsUntilWritten(t *testing.T) {
	tests := []struct {
		name        string
		lines       []string
		limit       int // bytes of line protocol the fake accepts per request
		gzip        bool
		wantDropped float64
	}{
		{name: "halves", lines: numbered(10), limit: 3 * len("m,n=00 v=1 1\n"), gzip: true},
		{name: "odd count, no gzip", lines: numbered(7), limit: 2 * len("m,n=00 v=1 1\n")},
		{name: "one line over the limit is dropped", lines: append(numbered(4), "m,n=big v=\""+strings.Repeat("x", 100)+"\" 1"), limit: 40, wantDropped: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig("http://127.0.0.1:8086")
				cfg.InfluxDB.Gzip = tt.gzip
				h := newHarness(t, cfg)
				var written []string
				f := &fake{answer: func(_ int, r *request, w http.ResponseWriter, _ *http.Request) {
					if len(strings.Join(r.lines, "\n"))+1 > tt.limit {
						w.WriteHeader(http.StatusRequestEntityTooLarge)
						return
					}
					written = append(written, r.lines...) // the handler runs one request at a time here
					w.WriteHeader(http.StatusNoContent)
				}}
				stop := runFake(h, f)
				defer stop()

				h.appendLines(t, tt.lines...)
				require.NoError(t, flushFor(h, time.Hour))
				var want []string
				for _, l := range tt.lines {
					if len(l)+1 <= tt.limit {
						want = append(want, l)
					}
				}
				require.Equal(t, want, written, "every line once, in order")
				require.Equal(t, float64(len(want)), h.metric(t, "traefik_influxdb_bridge_points_written_total"))
				require.Equal(t, tt.wantDropped, h.metric(t, "traefik_influxdb_bridge_points_dropped_total", "reason", "too_large"))
				require.Zero(t, h.metric(t, "traefik_influxdb_bridge_retries_total"), "a split is not a retry")
				require.Zero(t, h.q.Stats().Lines)
			})
		})
	}
}

func numbered(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m,n=%02d v=1 1", i)
	}
	return out
}
