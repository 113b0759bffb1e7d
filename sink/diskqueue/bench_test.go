package diskqueue

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchRecord is size bytes of line protocol in 128-byte lines.
func benchRecord(size int) ([]byte, int) {
	line := append(bytes.Repeat([]byte("x"), 127), '\n')
	return bytes.Repeat(line, size/128), size / 128
}

func BenchmarkAppend(b *testing.B) {
	for _, fsync := range []string{FsyncAlways, FsyncInterval} {
		for _, size := range []int{4 << 10, 256 << 10} {
			b.Run(fmt.Sprintf("fsync=%s/record=%dKiB", fsync, size>>10), func(b *testing.B) {
				q, err := Open(b.TempDir(), Options{MaxBytes: 256 << 20, Fsync: fsync, FsyncInterval: time.Second}, nil)
				require.NoError(b, err)
				defer q.Close()
				data, n := benchRecord(size)
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					if err := q.Append(data, n); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDrain measures the sender's side after an outage: Next and Commit
// of 1MiB batches over a backlog of 4KiB records already on disk.
func BenchmarkDrain(b *testing.B) {
	const batch = 1 << 20
	q, err := Open(b.TempDir(), Options{MaxBytes: 1 << 30, Fsync: FsyncInterval, FsyncInterval: time.Hour}, nil)
	require.NoError(b, err)
	defer q.Close()
	data, n := benchRecord(4 << 10)
	fill := func() {
		for range (64 << 20) / len(data) {
			require.NoError(b, q.Append(data, n))
		}
		q.mu.Lock()
		q.seal() // syncs, so the backlog is sendable
		q.mu.Unlock()
	}
	ctx := context.Background()
	b.SetBytes(batch)
	b.ReportAllocs()
	for b.Loop() {
		if q.Stats().Records == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		bt, err := q.Next(ctx, 1<<20, batch)
		if err != nil {
			b.Fatal(err)
		}
		if len(bt.Data) != batch {
			b.Fatalf("batch of %d bytes", len(bt.Data))
		}
		if err := q.Commit(bt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures recovery: opening a directory that holds a 64MiB
// backlog, every record read and checked.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	opts := Options{MaxBytes: 1 << 30, Fsync: FsyncInterval, FsyncInterval: time.Hour}
	q, err := Open(dir, opts, nil)
	require.NoError(b, err)
	data, n := benchRecord(64 << 10)
	for range (64 << 20) / len(data) {
		require.NoError(b, q.Append(data, n))
	}
	require.NoError(b, q.Close())
	b.SetBytes(64 << 20)
	for b.Loop() {
		q, err := Open(dir, opts, nil)
		if err != nil {
			b.Fatal(err)
		}
		if q.Stats().Records != 1024 {
			b.Fatalf("%d records", q.Stats().Records)
		}
		_ = q.Close()
	}
}
