package collector

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink/diskqueue"
)

// waitGroups counts the scrapes that waited for a group.
type waitGroups struct {
	countGroups
	mu      sync.Mutex
	waits   int
	waiting chan struct{} // gets a value as a wait starts, if not nil
}

func (w *waitGroups) BeginGroupContext(ctx context.Context, key string) error {
	w.mu.Lock()
	w.waits++
	w.mu.Unlock()
	if w.waiting != nil {
		w.waiting <- struct{}{}
	}
	err := w.countGroups.Queue.BeginGroupContext(ctx, key)
	if err == nil {
		w.mu.Lock()
		w.begun++
		w.mu.Unlock()
	}
	return err
}

func (w *waitGroups) TryBeginGroup(key string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.countGroups.TryBeginGroup(key)
}

func (w *waitGroups) AppendGroup(key string, lines []byte, n int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.countGroups.AppendGroup(key, lines, n)
}

func openWaitQueue(t *testing.T, cfg *config.Config) *diskqueue.Queue {
	t.Helper()
	q, err := diskqueue.Open(t.TempDir(), diskqueue.Options{MaxBytes: 256 << 20, RecordMaxLines: cfg.Batch.MaxLines, RecordMaxBytes: int(cfg.Batch.MaxBytes)}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// TestCollectorWaitsForGroup: while another target's group is open, a
// grouped scrape holds its lines up to groupHold and then waits for the
// group, instead of holding its whole page until the other scrape ends; and
// it writes exactly what it writes when it never waits.
func TestCollectorWaitsForGroup(t *testing.T) {
	// 2.6 MB of line protocol in the second scrape.
	page1, page2 := string(traefikpage.Generate(100, 1)), string(traefikpage.Generate(100, 2))
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

	// run scrapes the two pages into a fresh disk queue. With hold,
	// another target's scrape (the test, under its own key) holds the
	// group before the second scrape starts, until that scrape waits.
	run := func(t *testing.T, hold bool) (lp string, state []byte, tg *target, wg *waitGroups) {
		srv := pageServer(t, page1, page2)
		cfg := testConfig(srv.URL + "/metrics")
		cfg.Batch = config.Default().Batch
		// Shorter than the wait below: the wait is not Traefik's.
		cfg.Traefik.Timeout = time.Second
		q := openWaitQueue(t, cfg)
		wg = &waitGroups{countGroups: countGroups{Queue: q}, waiting: make(chan struct{}, 1)}
		c, _ := newTestCollector(t, cfg, wg)
		tick(c, t0)
		drainQueue(t, q)
		if hold {
			require.NoError(t, q.BeginGroup("other target"))
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick(c, t0.Add(10*time.Second))
		}()
		if hold {
			select {
			case <-wg.waiting:
			case <-done:
				t.Fatal("the scrape ended without waiting for the group")
			case <-time.After(20 * time.Second):
				t.Fatal("the scrape never waited for the group")
			}
			// It waits, its body unread, while the other group is open,
			// for longer than traefik.timeout.
			select {
			case <-done:
				t.Fatal("the scrape ended while another group was open")
			case <-time.After(1500 * time.Millisecond):
			}
			q.AbortGroup("other target")
		}
		<-done
		tg = c.sources[0].targets[srv.URL+"/metrics"]
		state, err := q.LoadState(tg.stateKey)
		require.NoError(t, err)
		return drainQueue(t, q), state, tg, wg
	}

	alone, aloneState, _, aloneGroups := run(t, false)
	require.Zero(t, aloneGroups.waits)
	require.Equal(t, 1, aloneGroups.begun)
	require.Greater(t, strings.Count(alone, "\n"), 15000)

	waited, waitedState, tg, wg := run(t, true)
	require.Equal(t, 1, wg.waits)
	require.Equal(t, 1, wg.begun)
	require.Equal(t, 2.0, tg.m.success.Value(), "both scrapes succeeded, the one that waited too")
	// It held about groupHold (1 MiB) and the step after it; holding the
	// whole scrape, as before the wait, it held 2.6 MB.
	require.Less(t, cap(tg.out), defaultGroupHold+defaultGroupHold/2)
	require.Equal(t, sortedLines(alone), sortedLines(waited))
	require.Equal(t, alone, waited, "the same records in the same order")
	require.Equal(t, aloneState, waitedState)
}

// TestCollectorTargetsAtOnce: two targets scraped at once, as Run scrapes
// several URLs, take turns with the disk queue's group; what they write is
// what they write one after the other, and neither holds its whole page.
func TestCollectorTargetsAtOnce(t *testing.T) {
	pages := [][]string{
		{string(traefikpage.Generate(100, 1)), string(traefikpage.Generate(100, 2)), string(traefikpage.Generate(100, 3))},
		{string(traefikpage.Generate(60, 1)), string(traefikpage.Generate(60, 2)), string(traefikpage.Generate(60, 3))},
	}
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	run := func(t *testing.T, atOnce bool) (lp []string, states [][]byte, held []int, waits int) {
		a, b := pageServer(t, pages[0]...), pageServer(t, pages[1]...)
		cfg := testConfig(a.URL+"/metrics", b.URL+"/metrics")
		cfg.Batch = config.Default().Batch
		q := openWaitQueue(t, cfg)
		wg := &waitGroups{countGroups: countGroups{Queue: q}}
		c, _ := newTestCollector(t, cfg, wg)
		var all strings.Builder
		for i := range pages[0] {
			now := t0.Add(time.Duration(i) * 10 * time.Second)
			if atOnce {
				var started sync.WaitGroup
				started.Add(len(c.sources))
				var scrapes sync.WaitGroup
				for _, s := range c.sources {
					scrapes.Go(func() {
						started.Done()
						started.Wait() // start together
						c.scrapeSource(context.Background(), s, now, nil)
					})
				}
				scrapes.Wait()
			} else {
				tick(c, now)
			}
			// The instance tags name the servers, new in each run.
			lp := drainQueue(t, q)
			lp = strings.ReplaceAll(lp, strings.TrimPrefix(a.URL, "http://"), "a")
			all.WriteString(strings.ReplaceAll(lp, strings.TrimPrefix(b.URL, "http://"), "b"))
		}
		for _, s := range c.sources {
			for _, tg := range s.targets {
				st, err := q.LoadState(tg.stateKey)
				require.NoError(t, err)
				states = append(states, st)
				held = append(held, cap(tg.out))
			}
		}
		return sortedLines(all.String()), states, held, wg.waits
	}
	oneByOne, oneStates, _, oneWaits := run(t, false)
	require.Zero(t, oneWaits)
	atOnce, atOnceStates, held, _ := run(t, true)
	require.Greater(t, len(oneByOne), 2*15000)
	require.Equal(t, oneByOne, atOnce)
	require.Equal(t, oneStates, atOnceStates)
	for _, h := range held {
		require.Less(t, h, defaultGroupHold+defaultGroupHold/2)
	}
}
