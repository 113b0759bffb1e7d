package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/syncbuf"
)

// durability follows what the queue has synced, so that a simulated crash can
// throw away exactly the bytes a power cut could.
type durability struct {
	synced map[string]int64
}

func (d *durability) hooks() hooks {
	return hooks{synced: func(path string, size int64) { d.synced[path] = size }}
}

// reset records that everything now on disk survived.
func (d *durability) reset(t require.TestingT, dir string) {
	d.synced = map[string]int64{}
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	require.NoError(t, err)
	for _, p := range m {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		d.synced[p] = fi.Size()
	}
}

// crash cuts every segment somewhere between what was synced and what was
// written, as a power cut may; cut picks the point.
func (d *durability) crash(t require.TestingT, dir string, cut func(lo, hi int64) int64) {
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	require.NoError(t, err)
	for _, p := range m {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		if lo := d.synced[p]; lo < fi.Size() {
			require.NoError(t, os.Truncate(p, cut(lo, fi.Size())))
		}
	}
}

// TestStateExactlyOnceCounting plays the collector against the queue: Traefik
// counters grow, each scrape queues the increase since the saved state
// together with the new state, the sender delivers to an InfluxDB that keeps
// one point per timestamp, and the process is killed or restarted at random
// points, losing what was not synced and possibly the position file. In the
// end InfluxDB must hold each counter's increase exactly: nothing lost, nothing
// counted twice. A scrape is queued whole (AppendWithState) or as a group
// written a line at a time, and the process can die inside a group.
func TestStateExactlyOnceCounting(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dir, err := os.MkdirTemp("", "diskqueue-state")
		require.NoError(t, err)
		defer os.RemoveAll(dir)
		opts := Options{MaxBytes: 1 << 20, SegmentSize: rapid.SampledFrom([]int64{256, 1024, 1 << 16}).Draw(t, "segment"),
			Fsync: rapid.SampledFrom([]string{FsyncAlways, FsyncInterval}).Draw(t, "fsync"), FsyncInterval: 1 << 62,
			// A scrape is three lines; split into records of one, it must
			// still be kept or lost whole.
			RecordMaxLines: rapid.SampledFrom([]int{0, 1}).Draw(t, "record_max_lines")}
		targets := []string{"http://a:9100/metrics", "http://b:9100/metrics"}
		var d durability
		d.reset(t, dir)
		q, err := open(dir, opts, nil, d.hooks())
		require.NoError(t, err)
		defer func() { q.crash() }()

		traefik := map[string]int{}           // the counters Traefik serves
		collector := map[string]int{}         // the collector's state, as loaded or last saved
		influx := map[string]map[string]int{} // target -> series and timestamp -> increase
		ts := 0
		var crash func() // kill -9: lose what was not synced, maybe the position file
		load := func() {
			for _, k := range targets {
				b, err := q.LoadState(k)
				require.NoError(t, err)
				collector[k] = 0
				if b != nil {
					collector[k], err = strconv.Atoi(string(b))
					require.NoError(t, err)
				}
			}
		}
		// scrape queues the increases since the state and the new state,
		// whole or as a group written a line at a time (the collector
		// streaming its records); kill, when set, dies after that many
		// lines of the group, before its state.
		scrape := func(k string, grouped bool, kill int) {
			v := traefik[k]
			delta := v - collector[k]
			ts++
			state := []byte(strconv.Itoa(v))
			var lp []byte
			if delta > 0 {
				for part, d := range []int{delta / 3, delta / 3, delta - 2*(delta/3)} {
					lp = fmt.Appendf(lp, "c,target=%s,part=%d count=%d %d\n", k, part, d, ts)
				}
			}
			switch {
			case grouped:
				require.NoError(t, q.BeginGroup(k))
				for i, l := range splitLines(lp) {
					if i == kill {
						crash()
						return
					}
					require.NoError(t, q.AppendGroup(k, []byte(l+"\n"), 1))
				}
				if kill >= 0 {
					crash()
					return
				}
				require.NoError(t, q.CommitGroup(k, nil, 0, state))
			case delta > 0:
				require.NoError(t, q.AppendWithState(lp, 3, k, state))
			default:
				require.NoError(t, q.SaveState(k, state))
			}
			collector[k] = v
		}
		send := func(commit bool, maxLines int) {
			done, cancel := context.WithCancel(context.Background())
			cancel()
			b, err := q.Next(done, maxLines, 1<<20)
			if err != nil {
				require.ErrorIs(t, err, context.Canceled)
				return
			}
			for _, l := range splitLines(b.Data) {
				// InfluxDB keeps one point per series and timestamp.
				series, rest, _ := strings.Cut(l, " ")
				var delta, at int
				_, err := fmt.Sscanf(rest, "count=%d %d", &delta, &at)
				require.NoError(t, err)
				k, _, _ := strings.Cut(strings.TrimPrefix(series, "c,target="), ",part=")
				if influx[k] == nil {
					influx[k] = map[string]int{}
				}
				point := fmt.Sprintf("%s %d", series, at)
				if old, ok := influx[k][point]; ok {
					require.Equal(t, old, delta, "a point sent again carries the same increase")
				}
				influx[k][point] = delta
			}
			if commit {
				require.NoError(t, q.Commit(b))
			}
		}
		reopen := func() {
			q, err = open(dir, opts, nil, d.hooks())
			require.NoError(t, err)
			d.reset(t, dir)
			load()
		}
		load()
		crash = func() {
			q.crash()
			d.crash(t, dir, func(lo, hi int64) int64 { return rapid.Int64Range(lo, hi).Draw(t, "cut") })
			if rapid.Bool().Draw(t, "lose_position") {
				if err := os.Remove(filepath.Join(dir, positionName)); !errors.Is(err, fs.ErrNotExist) {
					require.NoError(t, err)
				}
			}
			reopen()
		}

		t.Repeat(map[string]func(*rapid.T){
			"traffic": func(t *rapid.T) {
				traefik[rapid.SampledFrom(targets).Draw(t, "target")] += rapid.IntRange(0, 5).Draw(t, "requests")
			},
			"scrape": func(t *rapid.T) {
				scrape(rapid.SampledFrom(targets).Draw(t, "target"), rapid.Bool().Draw(t, "grouped"), -1)
			},
			"killed_in_group": func(t *rapid.T) {
				scrape(rapid.SampledFrom(targets).Draw(t, "target"), true, rapid.IntRange(0, 3).Draw(t, "lines_written"))
			},
			"send": func(t *rapid.T) {
				send(rapid.Bool().Draw(t, "commit"), rapid.IntRange(1, 5).Draw(t, "max_lines"))
			},
			"tick": func(t *rapid.T) {
				q.mu.Lock()
				require.NoError(t, q.syncActive())
				q.mu.Unlock()
			},
			"restart": func(t *rapid.T) {
				require.NoError(t, q.Close())
				reopen()
			},
			"kill": func(t *rapid.T) { crash() },
		})

		// Shut down cleanly, start, take a last scrape and send everything.
		require.NoError(t, q.Close())
		reopen()
		for _, k := range targets {
			scrape(k, false, -1)
		}
		q.mu.Lock()
		require.NoError(t, q.syncActive())
		q.mu.Unlock()
		for i := 0; q.Stats().Records > 0; i++ {
			require.Less(t, i, 10000, "the queue drains")
			send(true, 100)
		}
		for _, k := range targets {
			sum := 0
			for _, delta := range influx[k] {
				sum += delta
			}
			require.Equal(t, traefik[k], sum, "increase of %s in InfluxDB", k)
		}
	})
}

func splitLines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := 0
		for b[i] != '\n' {
			i++
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out
}

// TestStateReadBack: the queue keeps no copy of a state. It reads a state
// back, checked, when asked (LoadState) and when a segment holding states
// goes (the state file), from the segment while it is there and from the
// state file after.
func TestStateReadBack(t *testing.T) {
	opts := Options{MaxBytes: 1 << 20, SegmentSize: 512}
	dir := t.TempDir()
	q, err := Open(dir, opts, testLog(t))
	require.NoError(t, err)
	defer func() { _ = q.Close() }()
	inFile := func(key string) bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		st, ok := q.states[key]
		require.True(t, ok, "no state for %q", key)
		return st.seg == nil
	}

	require.NoError(t, q.AppendWithState(lines(1, 2), 2, "old", []byte("state of old")))
	require.NoError(t, q.BeginGroup("grouped"))
	require.NoError(t, q.AppendGroup("grouped", lines(2, 2), 2))
	require.NoError(t, q.CommitGroup("grouped", lines(3, 1), 1, []byte("state of grouped")))
	for _, k := range []string{"old", "grouped"} {
		require.False(t, inFile(k), "the state of %q is not read from its segment", k)
	}
	b, err := q.LoadState("old")
	require.NoError(t, err)
	require.Equal(t, "state of old", string(b))

	// Fill segments past the first and send everything: the first segment
	// goes, and the states it held are read from the state file.
	first := segFiles(t, dir)[0]
	for i := range 10 {
		require.NoError(t, q.Append(lines(10+i, 3), 3))
	}
	drain(t, q, 1000, 1<<20)
	_, err = os.Stat(first)
	require.ErrorIs(t, err, fs.ErrNotExist, "the first segment was not deleted")
	for k, want := range map[string]string{"old": "state of old", "grouped": "state of grouped"} {
		require.True(t, inFile(k), "the state of %q is not read from the state file", k)
		b, err := q.LoadState(k)
		require.NoError(t, err)
		require.Equal(t, want, string(b), k)
	}

	// A state in a live segment that no longer reads back is an error, not
	// another state, and does not keep the others from the state file.
	require.NoError(t, q.SaveState("damaged", []byte("state of damaged")))
	q.mu.Lock()
	st := q.states["damaged"]
	path := q.segPath(st.seg.start)
	q.mu.Unlock()
	flipByte(t, path, int(st.at)+headerSize+len("damaged")+2)
	_, err = q.LoadState("damaged")
	require.ErrorIs(t, err, errChecksum)
	require.NoError(t, q.SaveState("other", []byte("x")))
	q.mu.Lock()
	require.NoError(t, q.persistStates(nil))
	q.mu.Unlock()
	// The states read from the file are read from the new one now.
	for k, want := range map[string]string{"old": "state of old", "grouped": "state of grouped"} {
		require.True(t, inFile(k), k)
		b, err := q.LoadState(k)
		require.NoError(t, err)
		require.Equal(t, want, string(b), k)
	}
	require.NoError(t, q.Close())

	q, err = Open(dir, opts, testLog(t))
	require.NoError(t, err)
	for k, want := range map[string]string{"old": "state of old", "grouped": "state of grouped", "other": "x"} {
		b, err := q.LoadState(k)
		require.NoError(t, err)
		require.Equal(t, want, string(b), k)
	}
	for _, k := range []string{"old", "grouped"} {
		require.True(t, inFile(k), "after a restart the state of %q is not read from the state file", k)
	}
}

// TestStateNoCopyHeld: however many segments holding states go, a state is
// not held in memory; each key's newest state still reads back, from its
// segment or from the state file, before and after a restart.
func TestStateNoCopyHeld(t *testing.T) {
	// Nothing in a savedState can hold a state's bytes.
	typ := reflect.TypeFor[savedState]()
	for i := range typ.NumField() {
		switch f := typ.Field(i); f.Type.Kind() {
		case reflect.Slice, reflect.Array, reflect.String, reflect.Map, reflect.Interface:
			t.Fatalf("savedState.%s (%s) can hold a state", f.Name, f.Type)
		case reflect.Pointer:
			require.Equal(t, reflect.TypeFor[*segment](), f.Type, "savedState.%s", f.Name)
		}
	}

	opts := Options{MaxBytes: 1 << 20, SegmentSize: 2048}
	dir := t.TempDir()
	q, err := Open(dir, opts, testLog(t))
	require.NoError(t, err)
	defer func() { _ = q.Close() }()
	keys := []string{"a", "b", "c", "d", "e"}
	want := map[string]string{}
	check := func() {
		t.Helper()
		for _, k := range keys {
			b, err := q.LoadState(k)
			require.NoError(t, err)
			require.Equal(t, want[k], string(b), k)
		}
	}
	inFile := 0
	for round := range 200 {
		// Keys go quiet at different rounds, so that the state file holds
		// states written many files ago next to new ones; the state sizes
		// vary so that positions shift.
		k := keys[round%len(keys)]
		if round > 100 && k == "e" || round > 150 && k == "d" {
			k = keys[round%3]
		}
		want[k] = strings.Repeat(fmt.Sprintf("%s%d;", k, round), 1+round%37)
		require.NoError(t, q.AppendWithState(lines(round, 2), 2, k, []byte(want[k])))
		drain(t, q, 1000, 1<<20)
		if round%17 == 0 {
			check()
		}
		q.mu.Lock()
		for _, st := range q.states {
			if st.seg == nil {
				inFile++
			}
		}
		q.mu.Unlock()
	}
	require.Positive(t, inFile, "no state was ever read from the state file")
	require.Greater(t, fileSize(t, filepath.Join(dir, stateName)), int64(0))
	check()
	q.mu.Lock()
	for k, st := range q.states {
		if st.seg == nil {
			require.Equal(t, len(want[k]), st.n, k)
		}
	}
	q.mu.Unlock()
	require.NoError(t, q.Close())
	q, err = Open(dir, opts, testLog(t))
	require.NoError(t, err)
	check()
}

// TestStateFileDamaged: the state file's checksum is the only thing that
// vouches for the states read from it. Damage found there, when a state is
// asked for or when the file is written anew, forgets those states (their
// targets start with a baseline) and is logged; it is not carried into the
// next state file, and the states in live segments are not touched.
func TestStateFileDamaged(t *testing.T) {
	for _, found := range []string{"LoadState", "persistStates"} {
		t.Run(found, func(t *testing.T) {
			opts := Options{MaxBytes: 1 << 20, SegmentSize: 512}
			dir := t.TempDir()
			var logged syncBuffer
			log := slog.New(slog.NewTextHandler(io.MultiWriter(&logged, tWriter{t}), nil))
			q, err := Open(dir, opts, log)
			require.NoError(t, err)
			defer func() { _ = q.Close() }()

			require.NoError(t, q.AppendWithState(lines(1, 1), 1, "gone1", []byte("state of gone1")))
			require.NoError(t, q.AppendWithState(lines(2, 1), 1, "gone2", []byte("state of gone2")))
			for i := range 10 {
				require.NoError(t, q.Append(lines(10+i, 3), 3))
			}
			drain(t, q, 1000, 1<<20)
			require.NoError(t, q.AppendWithState(lines(3, 1), 1, "live", []byte("state of live")))
			q.mu.Lock()
			st := q.states["gone2"]
			require.Nil(t, st.seg, "the state of gone2 is not in the state file")
			require.NotNil(t, q.states["live"].seg)
			q.mu.Unlock()
			flipByte(t, filepath.Join(dir, stateName), int(st.at)+3)

			switch found {
			case "LoadState":
				for _, k := range []string{"gone2", "gone1"} {
					b, err := q.LoadState(k)
					require.NoError(t, err)
					require.Nil(t, b, k)
				}
			case "persistStates":
				q.mu.Lock()
				require.NoError(t, q.persistStates(nil))
				q.mu.Unlock()
			}
			require.Contains(t, logged.String(), "level=ERROR msg=\"saved collector states no longer read back")
			b, err := q.LoadState("live")
			require.NoError(t, err)
			require.Equal(t, "state of live", string(b))
			q.mu.Lock()
			require.NoError(t, q.persistStates(nil))
			q.mu.Unlock()
			require.Equal(t, map[string]string{"live": "state of live"}, stateFileValues(t, dir))

			require.NoError(t, q.Close())
			q, err = Open(dir, opts, log)
			require.NoError(t, err)
			for k, want := range map[string]string{"gone1": "", "gone2": "", "live": "state of live"} {
				b, err := q.LoadState(k)
				require.NoError(t, err)
				require.Equal(t, want, string(b), k)
			}
		})
	}
}

// syncBuffer captures logs written by other goroutines while the test reads them.
type syncBuffer = syncbuf.Buffer
