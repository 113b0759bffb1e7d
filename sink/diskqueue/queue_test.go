package diskqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		records  int
		perRec   int
		maxLines int
		maxBytes int
		reopen   bool
	}{
		{name: "one record", opts: Options{MaxBytes: 1 << 20}, records: 1, perRec: 3, maxLines: 100, maxBytes: 1 << 20},
		{name: "joined batches", opts: Options{MaxBytes: 1 << 20}, records: 50, perRec: 4, maxLines: 10, maxBytes: 1 << 20},
		{name: "byte-limited batches", opts: Options{MaxBytes: 1 << 20}, records: 50, perRec: 4, maxLines: 1000, maxBytes: 300},
		{name: "across segments", opts: Options{MaxBytes: 1 << 20, SegmentSize: 1024}, records: 100, perRec: 2, maxLines: 1000, maxBytes: 1 << 20},
		{name: "interval fsync", opts: Options{MaxBytes: 1 << 20, Fsync: FsyncInterval, FsyncInterval: time.Hour}, records: 20, perRec: 2, maxLines: 7, maxBytes: 1 << 20},
		{name: "after reopen", opts: Options{MaxBytes: 1 << 20, SegmentSize: 2048}, records: 100, perRec: 3, maxLines: 20, maxBytes: 1 << 20, reopen: true},
	}
	for _, tt := range tests {
		// In a bubble, so that "interval" syncs come in fake time.
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				q, err := Open(dir, tt.opts, testLog(t))
				require.NoError(t, err)
				var want []byte
				for i := range tt.records {
					l := lines(i, tt.perRec)
					want = append(want, l...)
					require.NoError(t, q.Append(l, tt.perRec))
				}
				st := q.Stats()
				require.Equal(t, int64(tt.records), st.Records)
				require.Equal(t, int64(tt.records*tt.perRec), st.Lines)
				require.Equal(t, int64(len(want)), st.Bytes)
				if tt.reopen {
					require.NoError(t, q.Close())
					q, err = Open(dir, tt.opts, testLog(t))
					require.NoError(t, err)
					require.Equal(t, st.Lines, q.Stats().Lines)
				}
				got, n := drain(t, q, tt.maxLines, tt.maxBytes)
				require.Equal(t, string(want), string(got))
				require.Equal(t, tt.records*tt.perRec, n)
				st = q.Stats()
				require.Zero(t, st.Records)
				require.Zero(t, st.Bytes)
				require.Zero(t, st.Lines)
				require.True(t, st.Oldest.IsZero())
				require.NoError(t, q.Close())
				// Everything was committed: a reopened queue is empty and has
				// reclaimed all but the segment it appends to.
				q, err = Open(dir, tt.opts, testLog(t))
				require.NoError(t, err)
				require.Zero(t, q.Stats().Records)
				require.LessOrEqual(t, len(segFiles(t, dir)), 1)
				require.NoError(t, q.Close())
			})
		})
	}
}

func TestNextLimits(t *testing.T) {
	tests := []struct {
		name      string
		perRec    []int
		maxLines  int
		maxBytes  int
		wantLines int
	}{
		{name: "whole record over the line limit", perRec: []int{5, 1}, maxLines: 2, maxBytes: 1 << 20, wantLines: 5},
		{name: "stops before exceeding lines", perRec: []int{2, 2, 2}, maxLines: 5, maxBytes: 1 << 20, wantLines: 4},
		{name: "exact line limit", perRec: []int{2, 3, 1}, maxLines: 5, maxBytes: 1 << 20, wantLines: 5},
		{name: "bytes limit", perRec: []int{1, 1, 1}, maxLines: 100, maxBytes: 70, wantLines: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Open(t.TempDir(), Options{MaxBytes: 1 << 20}, testLog(t))
			require.NoError(t, err)
			defer q.Close()
			for i, n := range tt.perRec {
				require.NoError(t, q.Append(lines(i, n), n))
			}
			b, err := q.Next(context.Background(), tt.maxLines, tt.maxBytes)
			require.NoError(t, err)
			require.Equal(t, tt.wantLines, b.Lines)
			require.Equal(t, tt.wantLines, bytes.Count(b.Data, []byte{'\n'}))
			again, err := q.Next(context.Background(), 1, 1)
			require.NoError(t, err)
			require.Equal(t, b.Seq, again.Seq, "Next before Commit returns the batch in flight")
			require.Equal(t, b.Data, again.Data)
		})
	}
}

func TestAppendRejects(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		n     int
		isErr error
	}{
		{name: "no newline at end", data: []byte("m v=1"), n: 1},
		{name: "more lines than bytes", data: []byte("\n"), n: 2},
		{name: "lines without data", data: nil, n: 1},
		{name: "data without lines", data: []byte("m v=1\n"), n: 0},
		{name: "larger than the cap", data: bytes.Repeat([]byte("m v=1\n"), 2000), n: 2000, isErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Open(t.TempDir(), Options{MaxBytes: 8192}, testLog(t))
			require.NoError(t, err)
			defer q.Close()
			err = q.Append(tt.data, tt.n)
			require.Error(t, err)
			if tt.isErr != nil {
				require.ErrorIs(t, err, tt.isErr)
			}
			require.Zero(t, q.Stats().Records)
			if tt.isErr != nil {
				require.Equal(t, int64(tt.n), q.Stats().DroppedLines[ReasonBufferFull])
			}
		})
	}
}

func TestCommitUnknownBatch(t *testing.T) {
	q, err := Open(t.TempDir(), Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	require.NoError(t, q.Append(lines(1, 1), 1))
	b, err := q.Next(context.Background(), 10, 1<<20)
	require.NoError(t, err)
	b.Seq++
	require.Error(t, q.Commit(b))
	require.Equal(t, int64(1), q.Stats().Records)
}

func TestCap(t *testing.T) {
	q, err := Open(t.TempDir(), Options{MaxBytes: 16 << 10, SegmentSize: 4 << 10}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	for i := range 200 {
		require.NoError(t, q.Append(lines(i, 2), 2))
		require.LessOrEqual(t, q.disk, int64(16<<10))
	}
	st := q.Stats()
	require.Positive(t, st.DroppedLines[ReasonBufferFull])
	require.Equal(t, int64(400), st.Lines+st.DroppedLines[ReasonBufferFull], "every line is waiting or counted as dropped")
	got, _ := drain(t, q, 1000, 1<<20)
	require.True(t, bytes.HasSuffix(got, lines(199, 2)), "the newest record is kept")
}

func TestCapKeepsBatchInFlight(t *testing.T) {
	q, err := Open(t.TempDir(), Options{MaxBytes: 16 << 10, SegmentSize: 4 << 10}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	require.NoError(t, q.Append(lines(-1, 2), 2))
	b, err := q.Next(context.Background(), 1000, 1<<20)
	require.NoError(t, err)
	for i := range 300 {
		require.NoError(t, q.Append(lines(i, 2), 2))
		// Over the cap by at most the segment that holds the batch in flight.
		require.LessOrEqual(t, q.disk, int64(20<<10))
	}
	st := q.Stats()
	require.Equal(t, int64(602), st.Lines+st.DroppedLines[ReasonBufferFull])
	require.Equal(t, string(lines(-1, 2)), string(b.Data))
	require.NoError(t, q.Commit(b))
	require.LessOrEqual(t, q.disk, int64(16<<10))
}

func TestConcurrentAppend(t *testing.T) {
	q, err := Open(t.TempDir(), Options{MaxBytes: 64 << 20, SegmentSize: 64 << 10, Fsync: FsyncInterval, FsyncInterval: time.Millisecond}, testLog(t))
	require.NoError(t, err)
	const writers, each = 4, 200
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				errs <- q.Append(lines(w*each+i, 3), 3)
			}
		})
	}
	// The sender drains while the collectors append.
	seen := map[string]int{}
	total := 0
	for total < writers*each*3 {
		b, err := q.Next(context.Background(), 50, 1<<20)
		require.NoError(t, err)
		for l := range bytes.Lines(b.Data) {
			seen[string(l)]++
		}
		total += b.Lines
		_ = q.Stats()
		require.NoError(t, q.Commit(b))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, seen, writers*each*3)
	for l, n := range seen {
		require.Equal(t, 1, n, l)
	}
	require.NoError(t, q.Close())
}

func TestNextWaits(t *testing.T) {
	tests := []struct {
		name string
		act  func(q *Queue, cancel context.CancelFunc)
		want error
	}{
		{name: "woken by append", act: func(q *Queue, _ context.CancelFunc) { _ = q.Append(lines(1, 1), 1) }},
		{name: "ctx done", act: func(_ *Queue, cancel context.CancelFunc) { cancel() }, want: context.Canceled},
		{name: "closed", act: func(q *Queue, _ context.CancelFunc) { _ = q.Close() }, want: ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q, err := Open(t.TempDir(), Options{MaxBytes: 1 << 20}, testLog(t))
				require.NoError(t, err)
				defer q.Close()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var got error
				done := false
				go func() {
					_, got = q.Next(ctx, 10, 1<<20)
					done = true
				}()
				synctest.Wait()
				require.False(t, done, "Next returned on an empty queue")
				tt.act(q, cancel)
				synctest.Wait()
				require.True(t, done)
				if tt.want == nil {
					require.NoError(t, got)
				} else {
					require.True(t, errors.Is(got, tt.want), "got %v", got)
				}
			})
		})
	}
}

func TestFsyncInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		synced := 0
		h := hooks{synced: func(string, int64) { mu.Lock(); synced++; mu.Unlock() }}
		q, err := open(t.TempDir(), Options{MaxBytes: 1 << 20, Fsync: FsyncInterval, FsyncInterval: time.Second}, testLog(t), h)
		require.NoError(t, err)
		count := func() int { mu.Lock(); defer mu.Unlock(); return synced }
		require.NoError(t, q.Append(lines(1, 1), 1))
		require.NoError(t, q.Append(lines(2, 1), 1))
		require.Equal(t, 0, count(), "interval mode does not sync on append")
		done, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = q.Next(done, 10, 1<<20)
		require.ErrorIs(t, err, context.Canceled, "a record is not sent before it is durable")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, 1, count(), "one sync per interval with new data")
		b, err := q.Next(done, 10, 1<<20)
		require.NoError(t, err)
		require.Equal(t, 2, b.Lines)
		require.NoError(t, q.Commit(b))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.Equal(t, 1, count(), "no sync without new data")
		require.NoError(t, q.Append(lines(3, 1), 1))
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, 2, count())
		require.NoError(t, q.Close())
	})
}

func TestFsyncAlwaysSyncsEachAppend(t *testing.T) {
	var sizes []int64
	h := hooks{synced: func(_ string, size int64) { sizes = append(sizes, size) }}
	dir := t.TempDir()
	q, err := open(dir, Options{MaxBytes: 1 << 20}, testLog(t), h)
	require.NoError(t, err)
	defer q.Close()
	for i := range 3 {
		require.NoError(t, q.Append(lines(i, 1), 1))
		require.Len(t, sizes, i+1)
		require.Equal(t, fileSize(t, segFiles(t, dir)[0]), sizes[i], "synced up to what Append wrote")
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	_, err = Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.ErrorContains(t, err, "in use")
	require.NoError(t, q.Close())
	q, err = Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	require.NoError(t, q.Close())
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantSeg int64
		wantErr string
	}{
		{name: "defaults", opts: Options{MaxBytes: 256 << 20}, wantSeg: DefaultSegmentSize},
		{name: "small cap shrinks segments", opts: Options{MaxBytes: 4 << 20}, wantSeg: 1 << 20},
		{name: "no cap", opts: Options{}, wantErr: "max bytes"},
		{name: "bad fsync", opts: Options{MaxBytes: 1 << 20, Fsync: "sometimes"}, wantErr: "fsync must be"},
		{name: "interval without duration", opts: Options{MaxBytes: 1 << 20, Fsync: FsyncInterval}, wantErr: "interval must be positive"},
		{name: "segment over half the cap", opts: Options{MaxBytes: 1 << 20, SegmentSize: 1 << 20}, wantErr: "segment size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.opts.withDefaults()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantSeg, o.SegmentSize)
			require.Equal(t, FsyncAlways, o.Fsync)
		})
	}
}

func ExampleQueue_AppendWithState() {
	dir, _ := os.MkdirTemp("", "diskqueue-example")
	defer os.RemoveAll(dir)
	q, _ := Open(dir, Options{MaxBytes: 1 << 20}, nil)
	// One scrape: its lines and the counter state they were computed from.
	_ = q.AppendWithState([]byte("m count=3 1700000000\n"), 1, "http://traefik:9100/metrics", []byte("state after scrape 1"))
	_ = q.Close()

	q, _ = Open(dir, Options{MaxBytes: 1 << 20}, nil)
	state, _ := q.LoadState("http://traefik:9100/metrics")
	b, _ := q.Next(context.Background(), 100, 1<<20)
	fmt.Printf("%s / %s", state, b.Data)
	_ = q.Close()
	// Output: state after scrape 1 / m count=3 1700000000
}

func TestDamageFoundWhileRunning(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	for id := range 3 {
		require.NoError(t, q.Append(lines(id, 2), 2))
	}
	recs := scanDir(t, dir)
	flipByte(t, recs[1].path, recs[1].off+headerSize+1)
	b, err := q.Next(context.Background(), 100, 1<<20)
	require.NoError(t, err)
	require.Equal(t, []int{0, 2}, ids(t, b.Data))
	require.Equal(t, 4, b.Lines)
	st := q.Stats()
	require.Equal(t, int64(2), st.DroppedLines[ReasonCorrupt])
	require.Equal(t, int64(2), st.Records)
	require.Equal(t, int64(4), st.Lines)
	require.NoError(t, q.Commit(b))
	require.Zero(t, q.Stats().Records)
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name     string
		maxLines int
		maxBytes int
		data     string
		n        int
		want     []string
		wantErr  bool
	}{
		{name: "no limits", data: "a\nb\nc\n", n: 3, want: []string{"a\nb\nc\n"}},
		{name: "within the limits untouched", maxLines: 3, maxBytes: 6, data: "a\nb\nc\n", n: 3, want: []string{"a\nb\nc\n"}},
		{name: "by lines", maxLines: 2, data: "a\nb\nc\nd\ne\n", n: 5, want: []string{"a\nb\n", "c\nd\n", "e\n"}},
		{name: "by bytes", maxBytes: 5, data: "aa\nbb\ncc\n", n: 3, want: []string{"aa\n", "bb\n", "cc\n"}},
		{name: "long line alone", maxBytes: 4, data: "a\nlonglong\nb\n", n: 3, want: []string{"a\n", "longlong\n", "b\n"}},
		{name: "both", maxLines: 3, maxBytes: 8, data: "a\nb\nc\nd\nccccccc\n", n: 5, want: []string{"a\nb\nc\n", "d\n", "ccccccc\n"}},
		{name: "wrong line count", maxLines: 1, data: "a\nb\n", n: 3, wantErr: true},
		{name: "state alone", maxLines: 1, data: "", n: 0, want: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &Queue{opts: Options{RecordMaxLines: tt.maxLines, RecordMaxBytes: tt.maxBytes}}
			got, err := q.split(nil, []byte(tt.data), tt.n)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			var parts []string
			for _, c := range got {
				parts = append(parts, string(c.data))
				require.Equal(t, bytes.Count(c.data, []byte{'\n'}), c.lines)
			}
			require.Equal(t, tt.want, parts)
		})
	}
}

// TestAppendIsAtomic splits appends into records (record_max_lines 2) and
// damages or cuts them: an append's data stays only with its last record,
// which carries its state, so the collector never resumes from a state that
// does not match the data queued.
func TestAppendIsAtomic(t *testing.T) {
	tests := []struct {
		name        string
		third       bool // a third append follows the damaged one
		damage      func(t *testing.T, recs []recLoc)
		wantIDs     []int
		wantState   string
		wantCorrupt int64
	}{
		{
			name: "last record cut short by a crash",
			damage: func(t *testing.T, recs []recLoc) {
				last := recs[len(recs)-1]
				require.NoError(t, os.Truncate(last.path, int64(last.off+last.size-3)))
			},
			wantIDs: []int{1}, wantState: "one",
		},
		{
			name: "last record damaged at the end",
			damage: func(t *testing.T, recs []recLoc) {
				last := recs[len(recs)-1]
				flipByte(t, last.path, last.off+headerSize)
			},
			wantIDs: []int{1}, wantState: "one", wantCorrupt: 5,
		},
		{
			name:  "last record damaged before another append",
			third: true,
			damage: func(t *testing.T, recs []recLoc) {
				flipByte(t, recs[3].path, recs[3].off+headerSize)
			},
			wantIDs: []int{1, 3}, wantState: "three", wantCorrupt: 5,
		},
		{
			name:  "middle record damaged",
			third: true,
			damage: func(t *testing.T, recs []recLoc) {
				flipByte(t, recs[2].path, recs[2].off+headerSize)
			},
			wantIDs: []int{1, 2, 3}, wantState: "three", wantCorrupt: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{MaxBytes: 1 << 20, RecordMaxLines: 2}
			q, err := Open(dir, opts, testLog(t))
			require.NoError(t, err)
			require.NoError(t, q.AppendWithState(lines(1, 2), 2, "k", []byte("one")))
			require.NoError(t, q.AppendWithState(lines(2, 5), 5, "k", []byte("two")))
			if tt.third {
				require.NoError(t, q.AppendWithState(lines(3, 1), 1, "k", []byte("three")))
			}
			require.NoError(t, q.Close())
			recs := scanDir(t, dir)
			require.Equal(t, byte(flagContinued), recs[1].flags, "the second append begins with a continued record")
			tt.damage(t, recs)

			q, err = Open(dir, opts, testLog(t))
			require.NoError(t, err)
			defer q.Close()
			state, err := q.LoadState("k")
			require.NoError(t, err)
			require.Equal(t, tt.wantState, string(state))
			require.Equal(t, tt.wantCorrupt, q.Stats().DroppedLines[ReasonCorrupt])
			got, _ := drain(t, q, 100, 1<<20)
			require.Equal(t, tt.wantIDs, ids(t, got))
		})
	}
}

// TestAppendLater: with fsync "always", lines appended by AppendLater are not
// synced nor sent on their own; the next Append syncs them with its own and
// both go out in one batch, and a second AppendLater syncs the first. A
// crash before that sync loses them (TestModel draws AppendLater too).
func TestAppendLater(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	next := func() (sink.Batch, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return q.Next(ctx, 1000, 1<<20)
	}
	syncs := 0
	q.hooks.synced = func(string, int64) { syncs++ }

	require.NoError(t, q.AppendLater(lines(1, 2), 2))
	_, err = next()
	require.ErrorIs(t, err, context.DeadlineExceeded, "held back")
	require.Zero(t, syncs)
	require.NoError(t, q.Append(lines(2, 3), 3))
	require.Equal(t, 1, syncs, "one fsync for both")
	b, err := next()
	require.NoError(t, err)
	require.Equal(t, string(lines(1, 2))+string(lines(2, 3)), string(b.Data))
	require.NoError(t, q.Commit(b))

	require.NoError(t, q.AppendLater(lines(3, 1), 1))
	require.NoError(t, q.AppendLater(lines(4, 1), 1))
	require.Equal(t, 2, syncs, "the second syncs both")
	b, err = next()
	require.NoError(t, err)
	require.Equal(t, string(lines(3, 1))+string(lines(4, 1)), string(b.Data))
	require.NoError(t, q.Commit(b))

	// Release, before the last flush, syncs what is held back.
	require.NoError(t, q.AppendLater(lines(5, 1), 1))
	_, err = next()
	require.ErrorIs(t, err, context.DeadlineExceeded, "held back")
	require.NoError(t, q.Release())
	require.Equal(t, 3, syncs)
	b, err = next()
	require.NoError(t, err)
	require.Equal(t, string(lines(5, 1)), string(b.Data))
	require.NoError(t, q.Commit(b))
	require.NoError(t, q.Release())
	require.Equal(t, 3, syncs, "nothing to sync")
}
