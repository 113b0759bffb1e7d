package diskqueue

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeGroup writes records first to first+len(counts)-1, counts[i] lines
// each, as a group of key ending with state, and commits it.
func commitGroup(t *testing.T, q *Queue, key string, first int, counts []int, state string) []byte {
	t.Helper()
	require.NoError(t, q.BeginGroup(key))
	var want []byte
	for i, n := range counts {
		l := lines(first+i, n)
		want = append(want, l...)
		require.NoError(t, q.AppendGroup(key, l, n))
	}
	require.NoError(t, q.CommitGroup(key, nil, 0, []byte(state)))
	return want
}

func loadState(t *testing.T, q *Queue, key string) string {
	t.Helper()
	b, err := q.LoadState(key)
	require.NoError(t, err)
	return string(b)
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestGroupCommit(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		counts   []int // lines of each AppendGroup
		last     int   // lines handed to CommitGroup
		maxLines int
	}{
		{name: "state alone at the end", opts: Options{MaxBytes: 1 << 20}, counts: []int{3, 1, 4}},
		{name: "last lines with the state", opts: Options{MaxBytes: 1 << 20}, counts: []int{2, 2}, last: 3},
		{name: "no lines", opts: Options{MaxBytes: 1 << 20}},
		{name: "split into records", opts: Options{MaxBytes: 1 << 20, RecordMaxLines: 2}, counts: []int{5, 1, 3}, last: 3, maxLines: 2},
		{name: "interval fsync", opts: Options{MaxBytes: 1 << 20, Fsync: FsyncInterval, FsyncInterval: time.Hour}, counts: []int{2, 2}, last: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q, err := Open(dir, tt.opts, testLog(t))
			require.NoError(t, err)
			require.NoError(t, q.AppendWithState(lines(100, 1), 1, "k", []byte("old")))

			require.NoError(t, q.BeginGroup("k"))
			var want []byte
			total := 0
			for i, n := range tt.counts {
				l := lines(i, n)
				want = append(want, l...)
				total += n
				require.NoError(t, q.AppendGroup("k", l, n))
			}
			// Synced or not, an open group is neither counted nor sent.
			q.mu.Lock()
			require.NoError(t, q.syncActive())
			q.mu.Unlock()
			st := q.Stats()
			require.Equal(t, int64(1), st.Records)
			require.Equal(t, int64(1), st.Lines)
			require.Equal(t, "old", loadState(t, q, "k"))
			b, err := q.Next(context.Background(), 1000, 1<<20)
			require.NoError(t, err)
			require.Equal(t, string(lines(100, 1)), string(b.Data))
			require.NoError(t, q.Commit(b))
			_, err = q.Next(canceled(), 1000, 1<<20)
			require.ErrorIs(t, err, context.Canceled, "Next handed out a record of an open group")

			l := lines(len(tt.counts), tt.last)
			want = append(want, l...)
			total += tt.last
			require.NoError(t, q.CommitGroup("k", l, tt.last, []byte("new")))
			require.Equal(t, "new", loadState(t, q, "k"))
			st = q.Stats()
			require.Equal(t, int64(total), st.Lines)
			require.Equal(t, int64(len(want)), st.Bytes)

			require.NoError(t, q.Close())
			q, err = Open(dir, tt.opts, testLog(t))
			require.NoError(t, err)
			defer q.Close()
			require.Equal(t, "new", loadState(t, q, "k"))
			got, n := drain(t, q, max(tt.maxLines, 1000), 1<<20)
			require.Equal(t, string(want), string(got))
			require.Equal(t, total, n)
			require.Zero(t, q.Stats().DroppedLines[ReasonCorrupt])
		})
	}
}

// TestGroupKeepsOthersOut: an append from another goroutine waits for the
// open group to end, and lands after it in the file.
func TestGroupKeepsOthersOut(t *testing.T) {
	for _, end := range []string{"commit", "abort"} {
		t.Run(end, func(t *testing.T) {
			dir := t.TempDir()
			q, err := Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
			require.NoError(t, err)
			defer q.Close()
			require.NoError(t, q.BeginGroup("a"))
			require.NoError(t, q.AppendGroup("a", lines(1, 2), 2))

			ok, err := q.TryBeginGroup("b")
			require.NoError(t, err)
			require.False(t, ok, "a second group opened beside the first")
			appended := make(chan error, 1)
			go func() { appended <- q.Append(lines(2, 1), 1) }()
			began := make(chan error, 1)
			go func() {
				err := q.BeginGroup("b")
				if err == nil {
					err = q.CommitGroup("b", lines(3, 1), 1, []byte("b"))
				}
				began <- err
			}()
			select {
			case err := <-appended:
				t.Fatalf("an append went through while a group was open: %v", err)
			case err := <-began:
				t.Fatalf("a group went through while another was open: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			// The sender is not held up by the open group.
			_, err = q.Next(canceled(), 10, 1<<20)
			require.ErrorIs(t, err, context.Canceled)
			require.Equal(t, int64(0), q.Stats().Records)

			want := []int{2, 3}
			if end == "commit" {
				require.NoError(t, q.AppendGroup("a", lines(1, 2)[:0], 0))
				require.NoError(t, q.CommitGroup("a", nil, 0, []byte("a")))
				want = []int{1, 2, 3}
			} else {
				q.AbortGroup("a")
			}
			require.NoError(t, <-appended)
			require.NoError(t, <-began)
			// The order of the two waiting is the scheduler's; a committed
			// group comes before both.
			got, _ := drain(t, q, 1000, 1<<20)
			require.ElementsMatch(t, want, ids(t, got))
			if end == "commit" {
				require.Equal(t, 1, ids(t, got)[0])
			}
		})
	}
}

// TestBeginGroupContext: a group begun with a context waits for the open
// group, gives up when its context ends (leaving the queue as it was, the
// other group open), and gets the queue once the other group ends.
func TestBeginGroupContext(t *testing.T) {
	q, err := Open(t.TempDir(), Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	require.ErrorIs(t, q.BeginGroupContext(canceled(), "b"), context.Canceled, "a context already ended")
	require.NoError(t, q.BeginGroup("a"))

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- q.BeginGroupContext(ctx, "b") }()
	select {
	case err := <-gaveUp:
		t.Fatalf("a group began while another was open: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	require.ErrorIs(t, <-gaveUp, context.Canceled)
	// "a" is still the open group, and the one that gave up holds nothing.
	require.NoError(t, q.AppendGroup("a", lines(1, 2), 2))
	ok, err := q.TryBeginGroup("c")
	require.NoError(t, err)
	require.False(t, ok)

	began := make(chan error, 1)
	go func() {
		err := q.BeginGroupContext(context.Background(), "b")
		if err == nil {
			err = q.CommitGroup("b", lines(2, 1), 1, []byte("b"))
		}
		began <- err
	}()
	select {
	case err := <-began:
		t.Fatalf("a group began while another was open: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, q.CommitGroup("a", nil, 0, []byte("a")))
	require.NoError(t, <-began)
	got, _ := drain(t, q, 1000, 1<<20)
	require.Equal(t, []int{1, 2}, ids(t, got))
	require.Equal(t, "b", loadState(t, q, "b"))
}

func TestGroupAbort(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	require.NoError(t, q.AppendWithState(lines(1, 2), 2, "k", []byte("one")))
	seg := segFiles(t, dir)[0]
	size := fileSize(t, seg)

	require.NoError(t, q.BeginGroup("k"))
	require.NoError(t, q.AppendGroup("k", lines(2, 5), 5))
	require.Greater(t, fileSize(t, seg), size)
	q.AbortGroup("k")
	q.AbortGroup("k") // a second time, or after CommitGroup, does nothing
	require.Equal(t, size, fileSize(t, seg), "the group's bytes were not taken back")
	require.ErrorContains(t, q.AppendGroup("k", lines(3, 1), 1), "no group open")
	require.ErrorContains(t, q.CommitGroup("k", nil, 0, []byte("x")), "no group open")
	require.Equal(t, "one", loadState(t, q, "k"))
	require.Equal(t, int64(2), q.Stats().Lines)

	// The queue goes on as before.
	want := append(lines(1, 2), commitGroup(t, q, "k", 4, []int{1}, "four")...)
	require.NoError(t, q.Close())
	q, err = Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	got, _ := drain(t, q, 1000, 1<<20)
	require.Equal(t, string(want), string(got))
	require.Equal(t, "four", loadState(t, q, "k"))
	require.Zero(t, q.Stats().DroppedLines[ReasonCorrupt])
}

// TestGroupCrash: a process that dies with a group open leaves its records
// at the end of the newest segment; Open drops them whole, and counts
// nothing, since none was acknowledged.
func TestGroupCrash(t *testing.T) {
	tests := []struct {
		name string
		// segment: small enough that the group runs past it, so the next
		// append after the restart begins a new segment.
		segment int64
		records int
		torn    bool // the crash cut the last record short
	}{
		{name: "whole records", segment: 1 << 18, records: 3},
		{name: "torn record", segment: 1 << 18, records: 3, torn: true},
		{name: "past the segment size", segment: 512, records: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{MaxBytes: 1 << 20, SegmentSize: tt.segment}
			q, err := Open(dir, opts, testLog(t))
			require.NoError(t, err)
			want := commitGroup(t, q, "k", 0, []int{2, 2}, "committed")
			require.NoError(t, q.BeginGroup("k"))
			for i := range tt.records {
				require.NoError(t, q.AppendGroup("k", lines(10+i, 2), 2))
			}
			q.crash()
			segs := segFiles(t, dir)
			require.Len(t, segs, 1, "a group was split across segments")
			if tt.torn {
				path := segs[0]
				require.NoError(t, os.Truncate(path, fileSize(t, path)-7))
			}

			q, err = Open(dir, opts, testLog(t))
			require.NoError(t, err)
			require.Equal(t, "committed", loadState(t, q, "k"))
			st := q.Stats()
			require.Equal(t, int64(len(want)), st.Bytes)
			require.Zero(t, st.DroppedLines[ReasonCorrupt])
			// Written after the cut: in a new segment when the old one is
			// over its size. The next open must find nothing amiss.
			want = append(want, commitGroup(t, q, "k", 50, []int{1}, "after")...)
			require.NoError(t, q.Close())
			q, err = Open(dir, opts, testLog(t))
			require.NoError(t, err)
			defer q.Close()
			require.Zero(t, q.Stats().DroppedLines[ReasonCorrupt])
			require.Equal(t, "after", loadState(t, q, "k"))
			got, _ := drain(t, q, 1000, 1<<20)
			require.Equal(t, string(want), string(got))
		})
	}
}

// TestGroupCutShortNotAtTheEnd: a group whose last record is missing in a
// segment that is not the newest cannot be a crash the queue already
// repaired: it is damage, dropped whole and counted. It arises when the
// bytes of a failed group cannot be cut from the file: the queue then
// writes on in a new segment.
func TestGroupCutShortNotAtTheEnd(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxBytes: 1 << 20}
	q, err := Open(dir, opts, testLog(t))
	require.NoError(t, err)
	want := commitGroup(t, q, "k", 0, []int{2}, "before")
	require.NoError(t, q.BeginGroup("k"))
	require.NoError(t, q.AppendGroup("k", lines(1, 3), 3))
	// The file goes read-only under the queue: the next write fails and so
	// does cutting the group back.
	q.mu.Lock()
	s := q.active
	ro, err := os.Open(q.segPath(s.start))
	require.NoError(t, err)
	require.NoError(t, s.f.Close())
	s.f = ro
	q.mu.Unlock()
	require.Error(t, q.AppendGroup("k", lines(2, 1), 1))
	err = q.CommitGroup("k", nil, 0, []byte("lost"))
	require.ErrorContains(t, err, "write")
	require.Equal(t, "before", loadState(t, q, "k"))
	require.Equal(t, int64(2), q.Stats().Lines, "a failed group was counted")

	want = append(want, commitGroup(t, q, "k", 3, []int{1}, "after")...)
	require.Len(t, segFiles(t, dir), 2, "the queue did not move on to a new segment")
	require.NoError(t, q.Close())

	q, err = Open(dir, opts, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	require.Equal(t, "after", loadState(t, q, "k"))
	require.Equal(t, int64(3), q.Stats().DroppedLines[ReasonCorrupt], "the lines of the group's first record")
	got, _ := drain(t, q, 1000, 1<<20)
	require.Equal(t, string(want), string(got))
}

// TestGroupCap: the cap is made room for a record at a time; a group that
// alone exceeds it fails with ErrTooLarge, and every line handed to it is
// counted buffer_full.
func TestGroupCap(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxBytes: 4096, SegmentSize: 1024}
	q, err := Open(dir, opts, testLog(t))
	require.NoError(t, err)
	defer q.Close()

	// Older records are dropped, oldest first, to make room for a group
	// that fits; the segment of the batch in flight is kept.
	for i := range 20 {
		require.NoError(t, q.Append(lines(i, 5), 5))
	}
	b, err := q.Next(context.Background(), 5, 1<<20)
	require.NoError(t, err)
	want := commitGroup(t, q, "k", 20, []int{5, 5, 5, 5, 5}, "fits")
	st := q.Stats()
	require.Positive(t, st.DroppedLines[ReasonBufferFull])
	dropped := st.DroppedLines[ReasonBufferFull]
	require.NoError(t, q.Commit(b))
	got, _ := drain(t, q, 1000, 1<<20)
	require.Equal(t, []int{20, 21, 22, 23, 24}, ids(t, got)[len(ids(t, got))-5:])
	// Record 0 was in flight: its segment stays whole, and the oldest
	// after it go.
	require.Equal(t, 1, ids(t, got)[0], "the segment of the batch in flight was dropped")
	require.NotContains(t, ids(t, got), 6, "the oldest records not in flight are dropped first")
	require.Equal(t, string(want), string(got[len(got)-len(want):]))

	require.NoError(t, q.BeginGroup("k"))
	handed := 0
	var tooLarge error
	for i := 0; tooLarge == nil; i++ {
		require.Less(t, i, 100, "a group larger than the cap was taken")
		tooLarge = q.AppendGroup("k", lines(30+i, 5), 5)
		handed += 5
	}
	require.ErrorIs(t, tooLarge, ErrTooLarge)
	require.ErrorIs(t, q.AppendGroup("k", lines(99, 2), 2), ErrTooLarge)
	require.ErrorIs(t, q.CommitGroup("k", lines(98, 1), 1, []byte("too large")), ErrTooLarge)
	handed += 3
	st = q.Stats()
	require.Equal(t, dropped+int64(handed), st.DroppedLines[ReasonBufferFull])
	require.Zero(t, st.Records)
	require.Equal(t, "fits", loadState(t, q, "k"))
	var disk int64
	for _, p := range segFiles(t, dir) {
		disk += fileSize(t, p)
	}
	q.mu.Lock()
	require.Equal(t, disk, q.disk)
	q.mu.Unlock()
	require.LessOrEqual(t, disk, opts.MaxBytes)
}

// TestGroupClose: Close takes an open group back; its owner learns of it at
// its next call.
func TestGroupClose(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	want := commitGroup(t, q, "k", 0, []int{1}, "before")
	require.NoError(t, q.BeginGroup("k"))
	require.NoError(t, q.AppendGroup("k", lines(1, 4), 4))
	require.NoError(t, q.Close())
	require.ErrorIs(t, q.AppendGroup("k", lines(2, 1), 1), ErrClosed)
	require.ErrorIs(t, q.CommitGroup("k", nil, 0, []byte("x")), ErrClosed)
	q.AbortGroup("k")
	require.ErrorIs(t, q.BeginGroup("k"), ErrClosed)

	q, err = Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	require.Equal(t, "before", loadState(t, q, "k"))
	got, _ := drain(t, q, 1000, 1<<20)
	require.Equal(t, string(want), string(got))
	require.Equal(t, int64(len(want)+2*headerSize+len("k")+len("before")), fileSize(t, filepath.Join(dir, segName(0))))
}

// TestGroupBadLines: lines the queue refuses fail the whole group, so that
// the state committed never accounts for lines it does not have.
func TestGroupBadLines(t *testing.T) {
	tests := []struct {
		name  string
		lines []byte
		n     int
	}{
		{name: "no newline at the end", lines: []byte("m v=1i 1"), n: 1},
		{name: "more lines announced", lines: lines(1, 2), n: 3},
		{name: "lines cut from a text without newlines", lines: []byte("m v=1i 1\nm v=2i 1"), n: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q, err := Open(dir, Options{MaxBytes: 1 << 20, RecordMaxLines: 1}, testLog(t))
			require.NoError(t, err)
			defer q.Close()
			want := commitGroup(t, q, "k", 0, []int{1}, "before")
			size := fileSize(t, segFiles(t, dir)[0])
			require.NoError(t, q.BeginGroup("k"))
			require.NoError(t, q.AppendGroup("k", lines(5, 2), 2))
			bad := q.AppendGroup("k", tt.lines, tt.n)
			require.Error(t, bad)
			require.Equal(t, bad, q.CommitGroup("k", nil, 0, []byte("after")))
			require.Equal(t, size, fileSize(t, segFiles(t, dir)[0]))
			require.Equal(t, "before", loadState(t, q, "k"))
			got, _ := drain(t, q, 1000, 1<<20)
			require.Equal(t, string(want), string(got))
		})
	}
}

// TestGroupCommitFrom: a state written piece by piece into its record reads
// back as the same bytes, after a reopen too; a writer that fails, or writes
// other than the length it announced, fails the group and leaves nothing of
// it, the queue going on as before.
func TestGroupCommitFrom(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	require.NoError(t, q.AppendWithState(lines(1, 2), 2, "k", []byte("one")))
	state := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80 KB
	pieces := func(p []byte) func(io.Writer) error {
		return func(w io.Writer) error {
			for len(p) > 0 {
				k := min(len(p), 7777)
				if _, err := w.Write(p[:k]); err != nil {
					return err
				}
				p = p[k:]
			}
			return nil
		}
	}
	for _, tt := range []struct {
		name  string
		len   int
		write func(io.Writer) error
		err   string
	}{
		{name: "writer fails", len: len(state), write: func(w io.Writer) error {
			_, _ = w.Write(state[:100])
			return errors.New("marshal broke")
		}, err: "marshal broke"},
		{name: "short", len: len(state), write: pieces(state[:len(state)-1]), err: "bytes written"},
		{name: "long", len: len(state) - 1, write: pieces(state), err: "bytes written"},
	} {
		seg := segFiles(t, dir)[0]
		size := fileSize(t, seg)
		require.NoError(t, q.BeginGroup("k"), tt.name)
		require.NoError(t, q.AppendGroup("k", lines(2, 3), 3), tt.name)
		require.ErrorContains(t, q.CommitGroupFrom("k", lines(3, 1), 1, tt.len, tt.write), tt.err, tt.name)
		require.Equal(t, size, fileSize(t, seg), "%s: the group's bytes were not taken back", tt.name)
		require.Equal(t, "one", loadState(t, q, "k"), tt.name)
		require.Equal(t, int64(2), q.Stats().Lines, tt.name)
	}

	require.NoError(t, q.BeginGroup("k"))
	require.NoError(t, q.AppendGroup("k", lines(4, 3), 3))
	require.NoError(t, q.CommitGroupFrom("k", lines(5, 1), 1, len(state), pieces(state)))
	require.Equal(t, string(state), loadState(t, q, "k"))
	require.NoError(t, q.Close())
	q, err = Open(dir, Options{MaxBytes: 1 << 20}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	require.Equal(t, string(state), loadState(t, q, "k"))
	got, n := drain(t, q, 1000, 1<<20)
	require.Equal(t, string(lines(1, 2))+string(lines(4, 3))+string(lines(5, 1)), string(got))
	require.Equal(t, 6, n)
	require.Zero(t, q.Stats().DroppedLines[ReasonCorrupt])
}
