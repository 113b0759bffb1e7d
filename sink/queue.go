package sink

import (
	"context"
	"time"
)

// Queue holds line protocol waiting to be written, oldest first. The memory
// queue in this package and the disk queue in sink/diskqueue implement it; the
// collector only sees its Append method.
type Queue interface {
	// Append adds one record: n complete, newline-terminated lines. The queue
	// copies lines. It does not block on the network; when the queue is full it
	// drops the oldest records that are not in flight, counts them, and keeps
	// the new one.
	Append(lines []byte, n int) error
	// Next waits until a record is queued or ctx is done, then returns the
	// oldest uncommitted records joined into one batch of at most maxLines
	// lines and maxBytes bytes (always at least one whole record). Until Commit,
	// calling Next again returns the same batch.
	Next(ctx context.Context, maxLines, maxBytes int) (Batch, error)
	// Commit removes the batch last returned by Next.
	Commit(b Batch) error
	// Stats reports what the queue holds and what it has dropped.
	Stats() QueueStats
	// Close releases the queue; a durable queue keeps what was not committed.
	Close() error
}

// OwningAppender is a Queue that can keep the caller's bytes instead of
// copying them: AppendOwned adds lines as Append does, but lines become the
// queue's, and the caller must not write to their backing array again. The
// collector hands over its records that way, so that a full record is not
// held twice, once in the converter's buffer and once in the queue.
type OwningAppender interface {
	AppendOwned(lines []byte, n int) error
}

// LaterAppender is a Queue that can hold a record back so that it goes out
// with the next one rather than on its own: AppendLater adds lines as Append
// does, and they are sent with the next Append's, or at the latest with the
// next AppendLater's. The self-metrics, appended at the same tick as a
// scrape, take no request (nor, on disk, fsync) of their own that way.
// Release makes what AppendLater holds back go out now (the disk queue
// syncs it): before the last flush at shutdown, when no Append will come.
type LaterAppender interface {
	AppendLater(lines []byte, n int) error
	Release() error
}

// Batch is a run of records taken from the head of a queue.
type Batch struct {
	// Data is newline-terminated line protocol, valid until Commit or Close.
	Data []byte
	// Lines is the number of lines in Data.
	Lines int
	// Appended is when the oldest record in the batch was appended.
	Appended time.Time
	// Seq identifies the batch for Commit; its meaning belongs to the queue.
	Seq uint64
}

// QueueStats is a snapshot for self-metrics and readiness.
type QueueStats struct {
	Bytes    int64     // bytes waiting, in flight included
	Records  int64     // records waiting
	Lines    int64     // lines waiting
	MaxBytes int64     // the cap
	Oldest   time.Time // when the oldest waiting record was appended; zero if empty
	// DroppedLines counts lines the queue dropped, by reason ("buffer_full", "corrupt").
	DroppedLines map[string]int64
}
