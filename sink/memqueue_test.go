package sink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// rec makes a record of n lines named name-0 … name-(n-1).
func rec(name string, n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "m,r=%s v=%d\n", name, i)
	}
	return []byte(b.String())
}

func TestMemoryQueueBatching(t *testing.T) {
	a, b, c := rec("a", 2), rec("b", 3), rec("c", 1)
	tests := []struct {
		name     string
		maxLines int
		maxBytes int
		want     [][]byte // batches in order
	}{
		{name: "all fit", maxLines: 100, maxBytes: 1 << 20, want: [][]byte{concat(a, b, c)}},
		{name: "line limit", maxLines: 5, maxBytes: 1 << 20, want: [][]byte{concat(a, b), c}},
		{name: "line limit below one record", maxLines: 1, maxBytes: 1 << 20, want: [][]byte{a, b, c}},
		{name: "byte limit", maxLines: 100, maxBytes: len(a) + len(b) - 1, want: [][]byte{a, concat(b, c)}},
		{name: "byte limit below one record", maxLines: 100, maxBytes: 1, want: [][]byte{a, b, c}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewMemoryQueue(1 << 20)
			for _, r := range [][]byte{a, b, c} {
				require.NoError(t, q.Append(r, strings.Count(string(r), "\n")))
			}
			for i, want := range tt.want {
				got, err := q.Next(t.Context(), tt.maxLines, tt.maxBytes)
				require.NoError(t, err)
				require.Equal(t, string(want), string(got.Data), "batch %d", i)
				require.Equal(t, strings.Count(string(want), "\n"), got.Lines)
				require.NoError(t, q.Commit(got))
			}
			st := q.Stats()
			require.Zero(t, st.Bytes)
			require.Zero(t, st.Records)
			require.Zero(t, st.Lines)
			require.True(t, st.Oldest.IsZero())
		})
	}
}

func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestMemoryQueueRedeliversUntilCommit(t *testing.T) {
	q := NewMemoryQueue(1 << 20)
	require.NoError(t, q.Append(rec("a", 2), 2))
	first, err := q.Next(t.Context(), 100, 1<<20)
	require.NoError(t, err)
	// A record appended while the batch is out must not join it.
	require.NoError(t, q.Append(rec("b", 1), 1))
	again, err := q.Next(t.Context(), 100, 1<<20)
	require.NoError(t, err)
	require.Equal(t, first.Seq, again.Seq)
	require.Equal(t, string(rec("a", 2)), string(again.Data))

	require.Error(t, q.Commit(Batch{Seq: first.Seq + 1}), "commit of a batch not in flight")
	require.NoError(t, q.Commit(first))
	require.Error(t, q.Commit(first), "double commit")
	next, err := q.Next(t.Context(), 100, 1<<20)
	require.NoError(t, err)
	require.Equal(t, string(rec("b", 1)), string(next.Data))
	require.NotEqual(t, first.Seq, next.Seq)
}

func TestMemoryQueueCopiesAppendedBytes(t *testing.T) {
	q := NewMemoryQueue(1 << 20)
	buf := rec("a", 1)
	require.NoError(t, q.Append(buf, 1))
	copy(buf, "XXXX")
	b, err := q.Next(t.Context(), 10, 1<<20)
	require.NoError(t, err)
	require.Equal(t, string(rec("a", 1)), string(b.Data))
}

// AppendOwned keeps the caller's bytes, capped at their length: two records
// cut from one buffer (as the collector hands them over) stay apart, and
// joining them into a batch copies rather than appends to the first.
func TestMemoryQueueAppendOwned(t *testing.T) {
	q := NewMemoryQueue(1 << 20)
	buf := append(rec("a", 2), rec("b", 3)...)
	na := len(rec("a", 2))
	require.NoError(t, q.AppendOwned(buf[:na], 2))
	require.NoError(t, q.AppendOwned(buf[na:], 3))
	require.Equal(t, int64(len(buf)), q.Stats().Bytes)

	b, err := q.Next(t.Context(), 2, 1<<20) // the first record alone
	require.NoError(t, err)
	require.Same(t, &buf[0], &b.Data[0], "kept, not copied")
	require.Equal(t, na, cap(b.Data))
	require.NoError(t, q.Commit(b))
	b, err = q.Next(t.Context(), 10, 1<<20)
	require.NoError(t, err)
	require.Equal(t, string(rec("b", 3)), string(b.Data))
	require.NoError(t, q.Commit(b))

	// Joined with a copied record, the owned one is not written to.
	require.NoError(t, q.AppendOwned(buf[:na], 2))
	require.NoError(t, q.Append(rec("c", 1), 1))
	b, err = q.Next(t.Context(), 10, 1<<20)
	require.NoError(t, err)
	require.Equal(t, string(rec("a", 2))+string(rec("c", 1)), string(b.Data))
	require.Equal(t, string(rec("a", 2))+string(rec("b", 3)), string(buf))
}

func TestMemoryQueueEviction(t *testing.T) {
	r := rec("x", 1) // every record is the same size
	size := int64(len(r))
	tests := []struct {
		name        string
		capRecords  int64
		appends     int
		inflight    int // records taken by Next (uncommitted) after the first inflight appends
		wantKept    []int
		wantDropped int64
	}{
		{name: "under cap", capRecords: 4, appends: 4, wantKept: []int{0, 1, 2, 3}},
		{name: "oldest go first", capRecords: 3, appends: 5, wantKept: []int{2, 3, 4}, wantDropped: 2},
		{name: "in flight is kept", capRecords: 3, appends: 5, inflight: 2, wantKept: []int{0, 1, 4}, wantDropped: 2},
		{name: "in flight fills the cap", capRecords: 2, appends: 4, inflight: 2, wantKept: []int{0, 1, 3}, wantDropped: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewMemoryQueue(tt.capRecords * size)
			var inflight Batch
			for i := range tt.appends {
				require.NoError(t, q.Append(rec(fmt.Sprint(i), 1), 1))
				if tt.inflight > 0 && i == tt.inflight-1 {
					var err error
					inflight, err = q.Next(t.Context(), tt.inflight, 1<<20)
					require.NoError(t, err)
					require.Equal(t, tt.inflight, inflight.Lines)
				}
			}
			st := q.Stats()
			require.Equal(t, tt.wantDropped, st.DroppedLines[ReasonBufferFull])
			require.Equal(t, int64(len(tt.wantKept)), st.Records)
			require.Equal(t, int64(len(tt.wantKept)), st.Lines)
			require.Equal(t, int64(len(tt.wantKept))*size, st.Bytes)
			// Over the cap by at most the in-flight batch.
			require.LessOrEqual(t, st.Bytes, st.MaxBytes+int64(len(inflight.Data)))

			var got []int
			for q.Stats().Records > 0 {
				b, err := q.Next(t.Context(), 1, 1<<20)
				require.NoError(t, err)
				for _, line := range strings.Split(strings.TrimSuffix(string(b.Data), "\n"), "\n") {
					var n, v int
					_, err := fmt.Sscanf(line, "m,r=%d v=%d", &n, &v)
					require.NoError(t, err, line)
					got = append(got, n)
				}
				require.NoError(t, q.Commit(b))
			}
			require.Equal(t, tt.wantKept, got)
		})
	}
}

func TestMemoryQueueRecordOverCap(t *testing.T) {
	q := NewMemoryQueue(10)
	require.NoError(t, q.Append([]byte("a v=1\n"), 1))
	require.Error(t, q.Append(rec("big", 3), 3))
	st := q.Stats()
	require.Equal(t, int64(3), st.DroppedLines[ReasonBufferFull])
	require.Equal(t, int64(1), st.Records, "what was queued stays")
}

// waitingNext calls q.Next in a goroutine of the synctest bubble and returns,
// once that goroutine is blocked or done, the channel that gets its batch
// (closed without one on an error).
func waitingNext(q *MemoryQueue) chan Batch {
	got := make(chan Batch, 1)
	go func() {
		b, err := q.Next(context.Background(), 10, 1<<20)
		if err == nil {
			got <- b
		}
		close(got)
	}()
	synctest.Wait()
	return got
}

func TestMemoryQueueNextWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewMemoryQueue(1 << 20)
		start := time.Now()
		got := waitingNext(q)
		require.Empty(t, got, "Next returned on an empty queue")
		time.Sleep(5 * time.Second) // fake time: the record arrives later
		require.NoError(t, q.Append(rec("a", 1), 1))
		b := <-got
		require.Equal(t, string(rec("a", 1)), string(b.Data))
		require.Equal(t, start.Add(5*time.Second), b.Appended)
		require.Equal(t, b.Appended, q.Stats().Oldest)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.NoError(t, q.Commit(b))
		_, err := q.Next(ctx, 10, 1<<20)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		done := make(chan error, 1)
		go func() {
			_, err := q.Next(context.Background(), 10, 1<<20)
			done <- err
		}()
		synctest.Wait()
		require.NoError(t, q.Close())
		require.ErrorIs(t, <-done, ErrClosed)
		require.ErrorIs(t, q.Append(rec("b", 1), 1), ErrClosed)
	})
}

// TestMemoryQueueAppendLater: a record appended by AppendLater does not wake
// a waiting Next; the next Append does, and both go out in one batch; so do
// a second AppendLater and Release.
func TestMemoryQueueAppendLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewMemoryQueue(1 << 20)
		for _, tt := range []struct {
			name    string
			release func() error // what wakes the waiting Next
			want    string       // the batch: the held-back record and what came with it
		}{
			{"Append", func() error { return q.Append(rec("scrape", 3), 3) }, string(rec("held", 2)) + string(rec("scrape", 3))},
			{"AppendLater", func() error { return q.AppendLater(rec("next", 1), 1) }, string(rec("held", 2)) + string(rec("next", 1))},
			{"Release", q.Release, string(rec("held", 2))},
		} {
			got := waitingNext(q)
			require.NoError(t, q.AppendLater(rec("held", 2), 2))
			synctest.Wait()
			require.Empty(t, got, "%s: woken by AppendLater", tt.name)
			require.NoError(t, tt.release())
			b := <-got
			require.Equal(t, tt.want, string(b.Data), tt.name)
			require.NoError(t, q.Commit(b))
		}
		require.NoError(t, q.Close())
	})
}

// TestMemoryQueueModel checks, over random operations, that every appended
// line is delivered once in order, dropped (counted), or still queued.
func TestMemoryQueueModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		capBytes := rapid.Int64Range(50, 400).Draw(t, "cap")
		q := NewMemoryQueue(capBytes)
		var next, lastDelivered int = 0, -1
		appended, delivered := 0, 0
		var out *Batch
		t.Repeat(map[string]func(*rapid.T){
			"append": func(t *rapid.T) {
				n := rapid.IntRange(1, 4).Draw(t, "lines")
				var b strings.Builder
				for range n {
					fmt.Fprintf(&b, "m v=%d\n", next)
					next++
				}
				// A refused record (over the whole cap) is counted as dropped too.
				_ = q.Append([]byte(b.String()), n)
				appended += n
			},
			"next": func(t *rapid.T) {
				if q.Stats().Records == 0 {
					t.Skip("empty")
				}
				b, err := q.Next(context.Background(), rapid.IntRange(1, 10).Draw(t, "maxLines"), rapid.IntRange(1, 200).Draw(t, "maxBytes"))
				if err != nil {
					t.Fatal(err)
				}
				if out != nil && out.Seq != b.Seq {
					t.Fatalf("redelivery changed the batch: %d then %d", out.Seq, b.Seq)
				}
				out = &b
			},
			"commit": func(t *rapid.T) {
				if out == nil {
					t.Skip("nothing in flight")
				}
				for _, line := range strings.Split(strings.TrimSuffix(string(out.Data), "\n"), "\n") {
					var v int
					if _, err := fmt.Sscanf(line, "m v=%d", &v); err != nil {
						t.Fatal(err)
					}
					if v <= lastDelivered {
						t.Fatalf("line %d delivered after %d", v, lastDelivered)
					}
					lastDelivered = v
					delivered++
				}
				if err := q.Commit(*out); err != nil {
					t.Fatal(err)
				}
				out = nil
			},
			"": func(t *rapid.T) {
				st := q.Stats()
				if got := int64(delivered) + st.DroppedLines[ReasonBufferFull] + st.Lines; got != int64(appended) {
					t.Fatalf("delivered %d + dropped %d + queued %d != appended %d", delivered, st.DroppedLines[ReasonBufferFull], st.Lines, appended)
				}
				inflight := int64(0)
				if out != nil {
					inflight = int64(len(out.Data))
				}
				if st.Bytes > st.MaxBytes+inflight {
					t.Fatalf("holds %d bytes, cap %d, in flight %d", st.Bytes, st.MaxBytes, inflight)
				}
			},
		})
	})
}
