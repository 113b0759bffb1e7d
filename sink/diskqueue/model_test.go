package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
)

// mrec is the model's view of one appended record and where it was written.
type mrec struct {
	id    int
	first int    // index of its first line: one append can make several records
	data  []byte // nil for a state alone
	lines int
	key   string
	state string
	path  string
	end   int64 // offset in path just past the record
	alive bool  // still in its segment
	aside bool  // its state is in the state file
	group []*mrec
}

// peekIDs lists the waiting records, not in flight, by reading them back.
func (q *Queue) peekIDs(t require.TestingT) []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []int
	for _, r := range q.recs[q.head:] {
		buf := make([]byte, r.size)
		require.NoError(t, q.readAt(r.seg, buf, r.off))
		rec, err := decodeRecord(buf)
		require.NoError(t, err)
		var id int
		_, err = fmt.Sscanf(string(rec.data), "m,rec=%d ", &id)
		require.NoError(t, err)
		out = append(out, id)
	}
	return out
}

// TestModel runs random operations against the queue and a model that is a
// list: appends, Next, Commit, fsync ticks, clean restarts, kills that lose
// the unsynced bytes (plus a torn tail and possibly the position file) and
// flipped bits. After every step the queue must hold exactly what the model
// says, in order, with the sizes adding up; the cap may only drop the oldest
// records not in flight, and counts them; damage may only lose the record hit.
func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dir, err := os.MkdirTemp("", "diskqueue-model")
		require.NoError(t, err)
		defer os.RemoveAll(dir)
		opts := Options{
			MaxBytes:      rapid.SampledFrom([]int64{1 << 20, 2048}).Draw(t, "max_bytes"),
			SegmentSize:   rapid.SampledFrom([]int64{256, 512}).Draw(t, "segment"),
			Fsync:         rapid.SampledFrom([]string{FsyncAlways, FsyncInterval}).Draw(t, "fsync"),
			FsyncInterval: 1 << 62, // the "tick" action stands in for the timer
			// Split appends into records of two lines; the records of one
			// append must live or die together.
			RecordMaxLines: rapid.SampledFrom([]int{0, 2}).Draw(t, "record_max_lines"),
		}
		var d durability
		d.reset(t, dir)
		q, err := open(dir, opts, debugLog(), d.hooks())
		require.NoError(t, err)
		defer func() { q.crash() }()

		var (
			all      = map[[2]int]*mrec{} // by id and first line
			byState  = map[string]*mrec{}
			queue    []*mrec // waiting data records, the batch in flight first
			inflight int
			batch    sink.Batch
			states   []*mrec // every state written, oldest first
			nextID   int
		)
		done, cancel := context.WithCancel(context.Background())
		cancel()
		locate := func(r *mrec) {
			q.mu.Lock()
			r.path, r.end = q.segPath(q.active.start), q.active.size
			q.mu.Unlock()
		}
		durable := func(r *mrec) bool { return d.synced[r.path] >= r.end }
		reopen := func() {
			q, err = open(dir, opts, debugLog(), d.hooks())
			require.NoError(t, err)
			d.reset(t, dir)
			inflight = 0
		}
		// checkCap adopts what the cap dropped while appending: only the
		// oldest waiting records, each line counted. The segments holding the
		// batch in flight are kept whole until Commit.
		checkCap := func(t *rapid.T, before int64) {
			got := q.peekIDs(t)
			held := map[string]bool{}
			for _, r := range queue[:inflight] {
				held[r.path] = true
			}
			var kept []*mrec
			var lost int64
			rest := queue[inflight:]
			i, keeping := 0, false
			for _, r := range rest {
				if i < len(got) && got[i] == r.id {
					kept = append(kept, r)
					keeping = keeping || !held[r.path]
					i++
					continue
				}
				require.False(t, held[r.path], "record %d dropped from a segment in flight", r.id)
				require.False(t, keeping, "record %d dropped after a newer one was kept", r.id)
				lost += int64(r.lines)
			}
			require.Equal(t, len(got), i, "waiting records %v are not the model's %v", got, rest)
			require.Equal(t, lost, q.Stats().DroppedLines[ReasonBufferFull]-before)
			queue = append(queue[:inflight:inflight], kept...)
		}
		// markCut forgets the records a crash cut off, with the rest of
		// their append.
		markCut := func() {
			for _, r := range all {
				fi, err := os.Stat(r.path)
				if errors.Is(err, fs.ErrNotExist) {
					continue // consumed or dropped; its state, if any, was saved aside
				}
				require.NoError(t, err)
				if r.alive && r.end > fi.Size() {
					for _, g := range r.group {
						g.alive = false
					}
				}
			}
			queue = slices.DeleteFunc(queue, func(r *mrec) bool { return !r.alive })
		}

		t.Repeat(map[string]func(*rapid.T){
			"append": func(t *rapid.T) {
				nextID++
				n := rapid.IntRange(1, 5).Draw(t, "lines")
				per := n
				if opts.RecordMaxLines > 0 {
					per = opts.RecordMaxLines
				}
				var group []*mrec
				for first := 0; first < n; first += per {
					k := min(per, n-first)
					group = append(group, &mrec{id: nextID, first: first, data: linesFrom(nextID, first, k), lines: k, alive: true})
				}
				last := group[len(group)-1]
				before := q.Stats().DroppedLines[ReasonBufferFull]
				if rapid.Bool().Draw(t, "with_state") {
					last.key, last.state = rapid.SampledFrom([]string{"a", "b"}).Draw(t, "key"), "s"+strconv.Itoa(nextID)
					require.NoError(t, q.AppendWithState(lines(nextID, n), n, last.key, []byte(last.state)))
					states = append(states, last)
					byState[last.state] = last
				} else if rapid.Bool().Draw(t, "later") {
					require.NoError(t, q.AppendLater(lines(nextID, n), n))
				} else {
					require.NoError(t, q.Append(lines(nextID, n), n))
				}
				// The group ends the active segment.
				locate(last)
				end := last.end - int64(headerSize+len(last.data)+len(last.key)+len(last.state))
				for i := len(group) - 2; i >= 0; i-- {
					group[i].path, group[i].end = last.path, end
					end -= int64(headerSize + len(group[i].data))
				}
				for _, r := range group {
					r.group = group
					all[[2]int{r.id, r.first}] = r
				}
				queue = append(queue, group...)
				checkCap(t, before)
				require.NotEmpty(t, queue, "the new records are kept")
				require.Equal(t, group, queue[len(queue)-len(group):], "the new records are kept")
			},
			"group": func(t *rapid.T) {
				// An append written a record at a time: committed, aborted,
				// or cut by a kill while open.
				nextID++
				id, key := nextID, rapid.SampledFrom([]string{"a", "b"}).Draw(t, "group_key")
				before := q.Stats().DroppedLines[ReasonBufferFull]
				require.NoError(t, q.BeginGroup(key))
				var group []*mrec
				first := 0
				add := func(k int) { // the records k more lines make
					per := k
					if opts.RecordMaxLines > 0 {
						per = opts.RecordMaxLines
					}
					for f := first; f < first+k; f += per {
						m := min(per, first+k-f)
						group = append(group, &mrec{id: id, first: f, data: linesFrom(id, f, m), lines: m, alive: true})
					}
					first += k
				}
				for range rapid.IntRange(0, 3).Draw(t, "group_appends") {
					k := rapid.IntRange(1, 3).Draw(t, "group_lines")
					require.NoError(t, q.AppendGroup(key, linesFrom(id, first, k), k))
					add(k)
				}
				// The cap may have dropped older records to make room.
				checkCap(t, before)
				before = q.Stats().DroppedLines[ReasonBufferFull]
				require.NotContains(t, q.peekIDs(t), id, "an open group is not sent")
				require.Equal(t, int64(len(queue)), q.Stats().Records, "an open group is not counted")
				switch rapid.SampledFrom([]string{"commit", "abort", "kill"}).Draw(t, "group_end") {
				case "abort":
					q.AbortGroup(key)
					return
				case "kill":
					q.crash()
					d.crash(t, dir, func(lo, hi int64) int64 { return rapid.Int64Range(lo, hi).Draw(t, "cut") })
					markCut()
					reopen()
					return
				}
				k := rapid.IntRange(0, 3).Draw(t, "group_last_lines")
				state := "s" + strconv.Itoa(id)
				require.NoError(t, q.CommitGroup(key, linesFrom(id, first, k), k, []byte(state)))
				if k > 0 {
					add(k)
				} else {
					group = append(group, &mrec{id: id, first: first, alive: true})
				}
				last := group[len(group)-1]
				last.key, last.state = key, state
				locate(last)
				end := last.end - int64(headerSize+len(last.data)+len(last.key)+len(last.state))
				for i := len(group) - 2; i >= 0; i-- {
					group[i].path, group[i].end = last.path, end
					end -= int64(headerSize + len(group[i].data))
				}
				for _, r := range group {
					r.group = group
					all[[2]int{r.id, r.first}] = r
					if r.lines > 0 {
						queue = append(queue, r)
					}
				}
				states = append(states, last)
				byState[last.state] = last
				checkCap(t, before)
			},
			"save_state": func(t *rapid.T) {
				nextID++
				r := &mrec{id: nextID, key: rapid.SampledFrom([]string{"a", "b"}).Draw(t, "key"), state: "s" + strconv.Itoa(nextID), alive: true}
				before := q.Stats().DroppedLines[ReasonBufferFull]
				require.NoError(t, q.SaveState(r.key, []byte(r.state)))
				locate(r)
				r.group = []*mrec{r}
				all[[2]int{r.id, 0}] = r
				states = append(states, r)
				byState[r.state] = r
				checkCap(t, before)
			},
			"next": func(t *rapid.T) {
				maxLines := rapid.IntRange(1, 10).Draw(t, "max_lines")
				maxBytes := rapid.IntRange(1, 400).Draw(t, "max_bytes")
				b, err := q.Next(done, maxLines, maxBytes)
				if inflight > 0 {
					require.NoError(t, err)
					require.Equal(t, batch.Seq, b.Seq)
					require.Equal(t, string(batch.Data), string(b.Data))
					return
				}
				var want []byte
				n, ls := 0, 0
				for _, r := range queue {
					if !durable(r) || n > 0 && (ls+r.lines > maxLines || len(want)+len(r.data) > maxBytes) {
						break
					}
					want = append(want, r.data...)
					ls += r.lines
					n++
				}
				if n == 0 {
					require.ErrorIs(t, err, context.Canceled)
					return
				}
				require.NoError(t, err)
				require.Equal(t, string(want), string(b.Data))
				require.Equal(t, ls, b.Lines)
				inflight, batch = n, b
			},
			"commit": func(t *rapid.T) {
				if inflight == 0 {
					require.Error(t, q.Commit(batch), "a batch committed twice")
					return
				}
				require.NoError(t, q.Commit(batch))
				queue = queue[inflight:]
				inflight = 0
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
			"kill": func(t *rapid.T) {
				q.crash()
				d.crash(t, dir, func(lo, hi int64) int64 { return rapid.Int64Range(lo, hi).Draw(t, "cut") })
				markCut()
				if segs := segFiles(t, dir); len(segs) > 0 && rapid.Bool().Draw(t, "torn_tail") {
					// What a write cut short leaves: the start of a record.
					r := appendRecord(nil, 0, lines(-1, 3), 3, "", nil, 1)
					appendFile(t, segs[len(segs)-1], r[:rapid.IntRange(1, len(r)-1).Draw(t, "torn_bytes")])
				}
				losePosition := rapid.Bool().Draw(t, "lose_position")
				if losePosition {
					if err := os.Remove(filepath.Join(dir, positionName)); !errors.Is(err, fs.ErrNotExist) {
						require.NoError(t, err)
					}
				}
				reopen()
				if losePosition {
					// Everything still on disk is sent again, in order.
					queue = nil
					for _, l := range scanDir(t, dir) {
						if l.id >= 0 {
							r, ok := all[[2]int{l.id, l.line}]
							require.True(t, ok, "record %d invented", l.id)
							require.True(t, r.alive, "record %d came back from the dead", l.id)
							queue = append(queue, r)
						}
					}
				}
			},
			"flip_bit": func(t *rapid.T) {
				require.NoError(t, q.Close())
				segs := segFiles(t, dir)
				if len(segs) == 0 {
					reopen()
					return
				}
				path := rapid.SampledFrom(segs).Draw(t, "segment_file")
				size := fileSize(t, path)
				if size == 0 {
					reopen()
					return
				}
				at := int(rapid.Int64Range(0, size-1).Draw(t, "offset"))
				var hit *recLoc
				locs := scanDir(t, dir)
				for i, l := range locs {
					if l.path == path && l.off <= at && at < l.off+l.size {
						hit = &locs[i]
					}
				}
				require.NotNil(t, hit, "offset %d of %s is in no record", at, path)
				newest := hit.path == segs[len(segs)-1] && hit.off+hit.size == int(size)
				flipByte(t, path, at)
				reopen()
				// Counters start with the process: what this open counted.
				counted := q.Stats().DroppedLines[ReasonCorrupt]
				// Segment names can come back after a lost position file, so
				// the record hit is known by its id, not by where it was.
				var victim *mrec
				switch {
				case hit.id >= 0:
					victim = all[[2]int{hit.id, hit.line}]
				case hit.kind == kindRecord:
					victim = byState[hit.state]
				}
				switch {
				case victim == nil:
				case victim == victim.group[len(victim.group)-1]:
					// The last record of an append, with its state: without
					// it the others cannot stay.
					for _, g := range victim.group {
						g.alive = false
					}
				default:
					victim.alive = false
				}
				// Waiting lines were lost if a record that died was waiting
				// (a group's last record can be its state alone).
				live := slices.ContainsFunc(queue, func(r *mrec) bool { return !r.alive })
				queue = slices.DeleteFunc(queue, func(r *mrec) bool { return !r.alive })
				switch {
				case newest && live:
					// Damage to the newest record's header looks like a torn
					// write and is cut without counting.
				case live:
					require.Positive(t, counted, "lost record %d not counted", victim.id)
				default:
					require.Zero(t, counted, "nothing waiting was lost")
				}
			},
			"": func(t *rapid.T) {
				st := q.Stats()
				var bytes, ls int64
				for _, r := range queue {
					bytes += int64(len(r.data))
					ls += int64(r.lines)
				}
				require.Equal(t, int64(len(queue)), st.Records, "records")
				require.Equal(t, ls, st.Lines, "lines")
				require.Equal(t, bytes, st.Bytes, "bytes")
				var ids []int
				for _, r := range queue[inflight:] {
					ids = append(ids, r.id)
				}
				got := q.peekIDs(t)
				if len(ids) == 0 {
					require.Empty(t, got)
				} else {
					require.Equal(t, ids, got, "waiting records, in order")
				}
				var disk int64
				for _, p := range segFiles(t, dir) {
					disk += fileSize(t, p)
				}
				q.mu.Lock()
				require.Equal(t, disk, q.disk, "segment bytes")
				q.mu.Unlock()
				// A state survives damage to its record once it is saved aside.
				for _, v := range stateFileValues(t, dir) {
					byState[v].aside = true
				}
				for _, k := range []string{"a", "b"} {
					var want []byte
					for _, r := range states {
						if r.key == k && (r.alive || r.aside) {
							want = []byte(r.state)
						}
					}
					got, err := q.LoadState(k)
					require.NoError(t, err)
					require.Equal(t, string(want), string(got), "state of %q", k)
				}
			},
		})
	})
}
