package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/e2e/harness"
)

// Shape of TestCrash's outage. Each kill comes a random 1-4 s after the
// bridge was last (re)started, so it can land anywhere in a scrape, an fsync
// or a write attempt; the bridge then stays down a random 0-1.5 s while
// traffic goes on, so requests are served that only a restored counter state
// can account for.
const (
	crashKills      = 5
	crashMinUptime  = time.Second
	crashMaxUptime  = 4 * time.Second
	crashMaxDown    = 1500 * time.Millisecond
	crashAfterLast  = 3 * time.Second // outage left after the last restart
	crashSeedEnv    = "TIB_E2E_CRASH_SEED"
	crashDatabase   = "e2e_crash"
	crashLostHint   = "a shortfall after restarts means the increases of the scrapes around each kill were not carried over: the collector must save its counter state with the disk queue (AppendWithState) and restore it on start (LoadState), so the first scrape after a restart continues the deltas instead of being a baseline"
	crashDoubleHint = "an excess means an increase was written twice: a state restored that is older than the data already queued, or points re-sent with a new timestamp"
)

// TestCrash is the crash test with the real binary: a real Traefik
// under steady traffic, a real InfluxDB that is stopped for the whole outage,
// and a bridge with a disk buffer (fsync always) that is killed with SIGKILL
// several times at random moments during the outage and started again on the
// same buffer.dir. Then InfluxDB comes back, the backlog drains, and for every
// series sum("count") in InfluxDB must equal the increase of Traefik's own
// counter over the test: nothing lost, nothing doubled. The moments are drawn
// from a seeded math/rand; the seed is logged, and TIB_E2E_CRASH_SEED replays
// one.
//
// One more kill comes while the backlog drains, to show that a batch sent
// twice is not counted twice.
//
// It also greps everything the bridge showed the outside (its log across
// every run, at debug level; /metrics; /readyz; --check-config) for the
// InfluxDB password.
func TestCrash(t *testing.T) {
	st := startStack(t, harness.StartBackend)
	bridgeBin, influx := st.bridgeBin, st.influx
	tr := harness.StartTraefik(t, st.traefik)
	ctx := t.Context()

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, crashSeedEnv)
	}
	t.Logf("kill moments drawn with seed %d (replay with %s=%d)", seed, crashSeedEnv, seed)
	rnd := rand.New(rand.NewPCG(seed, 0))

	require.NoError(t, influx.CreateDatabase(ctx, crashDatabase))
	env := bridgeEnv(t, influx, crashDatabase, "traefik", tr)
	env["TIB_BUFFER_FSYNC"] = "always"
	// Debug level: the most the bridge ever logs is what the password grep
	// reads.
	env["TIB_LOG_LEVEL"] = "debug"
	// Small batches: a scrape becomes several records kept or lost together
	// (a kill can fall between them), and the backlog takes many writes to
	// drain, so the kill during the drain falls among them.
	env["TIB_BATCH_MAX_LINES"] = "50"
	bufferDir := env["TIB_BUFFER_DIR"]
	// One directory for every run, so the log accumulates across restarts.
	logDir := t.TempDir()
	opts := harness.BridgeOptions{
		Binary: bridgeBin,
		Config: examplePath(t, "bridge", "sidecar.yaml"),
		Env:    env,
		Dir:    logDir,
		Name:   "bridge-crash",
	}
	shown := &exposure{}
	b := harness.StartBridge(t, opts)
	require.NoError(t, b.WaitScrapes(ctx, wait, 1, tr.MetricsURL)) // the baseline
	base, err := tr.Metrics(ctx)
	require.NoError(t, err)

	// Traffic flows from here to the end of the outage, through every kill.
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	traffic := startTraffic(trafficCtx, tr)
	// Some traffic reaches InfluxDB before the outage, so the drain has
	// history to continue.
	require.NoError(t, b.WaitScrapes(ctx, wait, 2, tr.MetricsURL))

	outageStart := time.Now()
	require.NoError(t, influx.Stop())
	_, err = b.WaitFor(ctx, wait, "a backlog while InfluxDB is down", func(p harness.Progress) bool { return p.BufferBytes > 0 })
	require.NoError(t, err)

	for i := range crashKills {
		uptime := crashMinUptime + time.Duration(rnd.Int64N(int64(crashMaxUptime-crashMinUptime)))
		down := time.Duration(rnd.Int64N(int64(crashMaxDown)))
		sleep(ctx, uptime)
		shown.record(t, b)
		pid := b.PID()
		require.NoError(t, b.Kill())
		t.Logf("kill %d: SIGKILL pid %d after %s up, %s into the outage; down for %s",
			i+1, pid, uptime.Round(time.Millisecond), time.Since(outageStart).Round(time.Millisecond), down.Round(time.Millisecond))
		sleep(ctx, down)
		b = harness.StartBridge(t, opts)
		// The backlog survived the kill: the disk queue hands it to the new
		// process, and /metrics and /readyz show it.
		p, err := b.Progress(ctx)
		require.NoError(t, err)
		require.Positive(t, p.BufferBytes, "run %d: the backlog of the killed bridge is not in buffer.dir %s", i+2, bufferDir)
	}
	sleep(ctx, crashAfterLast)
	// The backlog and its age, seen from outside while InfluxDB is down.
	metrics, err := b.Metrics(ctx)
	require.NoError(t, err)
	require.Positive(t, metrics.Sum(selfPrefix+"_buffer_bytes", nil))
	require.Positive(t, metrics.Sum(selfPrefix+"_buffer_lines", nil))
	require.GreaterOrEqual(t, metrics.Sum(selfPrefix+"_buffer_oldest_age_seconds", nil), crashAfterLast.Seconds(),
		"the oldest waiting record is older than the last restart: it was queued by a killed run")
	status, body := shown.record(t, b)
	require.Equal(t, http.StatusServiceUnavailable, status, "/readyz while InfluxDB is down: %s", body)

	stopTraffic()
	sent, trafficErr := traffic.wait()
	require.NoError(t, trafficErr)
	t.Logf("outage: %s, %d kills, %d requests sent", time.Since(outageStart).Round(time.Millisecond), crashKills, sent)

	require.NoError(t, influx.StartAgain(ctx))
	drainStart := time.Now()
	// One more kill while the backlog drains, once part of it is written: a
	// batch InfluxDB has taken but the queue has not committed is sent again
	// by the next run, and must overwrite itself (same series, same
	// timestamps), not add up.
	before, err := b.Progress(ctx)
	require.NoError(t, err)
	require.NoError(t, waitDraining(ctx, b, before.BufferBytes))
	require.NoError(t, b.Kill())
	killedAt := time.Since(drainStart)
	b = harness.StartBridge(t, opts)
	p, err := b.Progress(ctx)
	require.NoError(t, err)
	t.Logf("kill %d: SIGKILL during the drain, %s after InfluxDB came back; %.0f bytes still queued at the restart",
		crashKills+1, killedAt.Round(time.Millisecond), p.BufferBytes)
	final := settle(t, []*harness.Traefik{tr}, []*harness.Bridge{b})[0]
	t.Logf("drained %s after InfluxDB came back", time.Since(drainStart).Round(time.Millisecond))
	expected := ledger{}
	expected.add(base, final)
	require.NotEmpty(t, expected.want())

	t.Run("every count equals Traefik's increase across the kills", func(t *testing.T) {
		requireExactCounts(t, traefikCounts(influx, crashDatabase, "", bridgeTags(nil)), expected.want())
	})
	t.Run("the password appears nowhere the bridge shows", func(t *testing.T) {
		shown.record(t, b)
		shown.add("--check-config", checkConfig(t, bridgeBin, opts))
		logs, err := os.ReadFile(b.LogPath)
		require.NoError(t, err)
		require.Contains(t, string(logs), "influxdb", "the log should be the bridge's, across %d runs", crashKills+2)
		shown.add("log of every run", string(logs))
		shown.requireAbsent(t, influx.Password)
	})
}

// waitDraining waits until the bridge's buffer holds less than from but is
// not empty: some batches are written, others wait.
func waitDraining(ctx context.Context, b *harness.Bridge, from float64) error {
	deadline := time.Now().Add(wait)
	for {
		p, err := b.Progress(ctx)
		if err == nil && p.BufferBytes > 0 && p.BufferBytes < from {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the buffer of %.0f bytes did not start draining within %s (last %.0f bytes, error %v)", from, wait, p.BufferBytes, err)
		}
		sleep(ctx, 5*time.Millisecond)
	}
}

// requireExactCounts reads until, for every series, the count equals want, or
// 20 s pass; then it fails with what was lost and what was doubled, series by
// series. Points reach InfluxDB a moment after the buffer empties; a wrong
// sum never converges.
func requireExactCounts(t *testing.T, r reader, want map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := r(t.Context())
		values := got[""].Values()
		if err == nil && len(got) <= 1 && equalNested(map[string]map[string]float64{"": values}, map[string]map[string]float64{"": want}) {
			return
		}
		if time.Now().After(deadline) {
			require.NoError(t, err)
			require.Len(t, got, 1, "points with an instance tag: the bridge scrapes one Traefik")
			t.Fatal(describeCountDiff(values, want))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// describeCountDiff lists the series whose sum differs from Traefik's
// increase and what that points to.
func describeCountDiff(got, want map[string]float64) string {
	keys := slices.Sorted(func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range []map[string]float64{got, want} {
			for k := range m {
				if !seen[k] && !yield(k) {
					return
				}
				seen[k] = true
			}
		}
	})
	var lost, doubled float64
	var lines []string
	for _, k := range keys {
		d := got[k] - want[k]
		if d == 0 {
			continue
		}
		if d < 0 {
			lost -= d
		} else {
			doubled += d
		}
		lines = append(lines, fmt.Sprintf("  %s: InfluxDB %g, Traefik's increase %g (%+g)", k, got[k], want[k], d))
	}
	if len(lines) > 25 {
		lines = append(lines[:25], fmt.Sprintf("  ... and %d more", len(lines)-25))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d series differ: %g counted by Traefik missing from InfluxDB, %g written beyond it\n",
		len(lines), len(keys), lost, doubled)
	b.WriteString(strings.Join(lines, "\n"))
	if lost > 0 {
		b.WriteString("\n" + crashLostHint)
	}
	if doubled > 0 {
		b.WriteString("\n" + crashDoubleHint)
	}
	return b.String()
}

// traffic sends the standard mix through Traefik over and over until its
// context ends. Errors are recorded here and checked by the test.
type traffic struct {
	done chan struct{}
	sent int
	err  error
}

func startTraffic(ctx context.Context, tr *harness.Traefik) *traffic {
	tf := &traffic{done: make(chan struct{})}
	go func() {
		defer close(tf.done)
		// Bounded: at most 10 minutes of mixes, far beyond any outage here.
		limit := time.Now().Add(10 * time.Minute)
		for ctx.Err() == nil && time.Now().Before(limit) {
			n, err := harness.Send(ctx, tr, harness.Mix(1))
			tf.sent += n
			if err != nil && ctx.Err() == nil {
				tf.err = err
				return
			}
		}
	}()
	return tf
}

// wait returns what was sent once the sender has stopped; a request cut
// short by the end of the context is not an error.
func (tf *traffic) wait() (int, error) {
	<-tf.done
	return tf.sent, tf.err
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// exposure collects what the bridge showed the outside, to grep it for
// secrets.
type exposure struct {
	mu   sync.Mutex
	what []string
	text []string
}

func (e *exposure) add(what, text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.what = append(e.what, what)
	e.text = append(e.text, text)
}

// record fetches the bridge's /metrics and /readyz as text, keeps them, and
// returns /readyz's status and body.
func (e *exposure) record(t *testing.T, b *harness.Bridge) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	var status int
	var readyz string
	for _, path := range []string{"/metrics", "/readyz"} {
		resp, err := client.Get(b.URL + path)
		require.NoError(t, err)
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		require.NoError(t, err)
		e.add(path+" of pid "+strconv.Itoa(b.PID()), string(body))
		if path == "/readyz" {
			status, readyz = resp.StatusCode, string(body)
		}
	}
	return status, readyz
}

// requireAbsent fails if secret occurs in anything recorded.
func (e *exposure) requireAbsent(t *testing.T, secret string) {
	t.Helper()
	require.NotEmpty(t, secret)
	e.mu.Lock()
	defer e.mu.Unlock()
	require.NotEmpty(t, e.text)
	for i, text := range e.text {
		if j := strings.Index(text, secret); j >= 0 {
			from, to := max(0, j-120), min(len(text), j+len(secret)+40)
			t.Fatalf("the password is in %s: ...%s...", e.what[i], text[from:to])
		}
	}
}

// checkConfig runs the bridge with --check-config on the crash test's
// configuration and returns what it printed.
func checkConfig(t *testing.T, bin string, opts harness.BridgeOptions) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config="+opts.Config, "--check-config")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range opts.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		require.NoError(t, err, "--check-config:\n%s", out)
	}
	require.NoError(t, err)
	require.Contains(t, string(out), "influxdb", "--check-config should print the configuration")
	return string(out)
}
