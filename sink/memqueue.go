package sink

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"
)

// Reasons under which lines are dropped, the values of the reason label of
// points_dropped_total.
const (
	ReasonBufferFull   = "buffer_full"
	ReasonCorrupt      = "corrupt"
	ReasonPartialWrite = "partial_write"
	ReasonRejected     = "rejected"
	ReasonTooLarge     = "too_large"
)

// ErrClosed is returned by a closed queue.
var ErrClosed = errors.New("queue closed")

// MemoryQueue is a Queue in memory, bounded by bytes. When an Append would go
// over the cap it drops the oldest records that are not in flight (not part of
// the batch last returned by Next and not yet committed). The in-flight batch
// is never dropped, so while one is out the queue can hold up to one batch
// (batch.max_bytes) more than its cap. A record larger than the whole cap is
// refused and counted as buffer_full. Its contents are lost on restart; use
// sink/diskqueue to keep them.
type MemoryQueue struct {
	maxBytes int64

	mu       sync.Mutex
	records  []record // oldest first; records[head:] are live
	head     int
	bytes    int64
	lines    int64
	inflight int    // records[head:head+inflight] form the batch out
	batch    Batch  // the batch out, valid when inflight > 0
	joined   []byte // reused backing store of batch.Data
	seq      uint64 // last batch Seq handed out
	dropped  map[string]int64
	wake     chan struct{} // closed and replaced when a record arrives or on Close
	later    bool          // an AppendLater has not woken Next
	closed   bool
}

type record struct {
	data     []byte
	lines    int
	appended time.Time
}

var (
	_ Queue          = (*MemoryQueue)(nil)
	_ LaterAppender  = (*MemoryQueue)(nil)
	_ OwningAppender = (*MemoryQueue)(nil)
)

// NewMemoryQueue returns an empty queue holding at most maxBytes of line
// protocol (plus one in-flight batch, see MemoryQueue).
func NewMemoryQueue(maxBytes int64) *MemoryQueue {
	return &MemoryQueue{
		maxBytes: maxBytes,
		dropped:  map[string]int64{},
		wake:     make(chan struct{}),
	}
}

// Append copies lines in as one record, evicting the oldest records not in
// flight when the cap would be exceeded.
func (q *MemoryQueue) Append(lines []byte, n int) error {
	return q.append(lines, n, false, false)
}

// AppendOwned is Append keeping lines itself rather than a copy: the caller
// gives them up (see OwningAppender). Records cut from one buffer share it
// until the last of them goes; the cap counts their bytes, not the buffer's
// spare room (at most about a record, as the collector sizes its buffers).
func (q *MemoryQueue) AppendOwned(lines []byte, n int) error {
	return q.append(lines, n, false, true)
}

// AppendLater is Append without waking a Next that waits for a record: the
// lines go out with the next Append's, or with the next AppendLater's, which
// wakes it. A Next already running takes them as any record.
func (q *MemoryQueue) AppendLater(lines []byte, n int) error {
	return q.append(lines, n, true, false)
}

// Release wakes a Next waiting while an AppendLater's record is queued.
func (q *MemoryQueue) Release() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.later && !q.closed {
		q.wakeNext()
	}
	return nil
}

// wakeNext releases a Next waiting for a record; q.mu is held.
func (q *MemoryQueue) wakeNext() {
	q.later = false
	close(q.wake)
	q.wake = make(chan struct{})
}

func (q *MemoryQueue) append(lines []byte, n int, later, owned bool) error {
	if len(lines) == 0 || n <= 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	size := int64(len(lines))
	if size > q.maxBytes {
		q.dropped[ReasonBufferFull] += int64(n)
		return fmt.Errorf("record of %d bytes is larger than the whole buffer (%d bytes): dropped %d lines", size, q.maxBytes, n)
	}
	// Evict from just after the in-flight batch: those are the oldest records
	// that may go.
	first := q.head + q.inflight
	evict := first
	for q.bytes+size > q.maxBytes && evict < len(q.records) {
		r := q.records[evict]
		q.bytes -= int64(len(r.data))
		q.lines -= int64(r.lines)
		q.dropped[ReasonBufferFull] += int64(r.lines)
		evict++
	}
	if evict > first {
		n := copy(q.records[first:], q.records[evict:])
		clear(q.records[first+n:])
		q.records = q.records[:first+n]
	}
	data := lines[:len(lines):len(lines)] // nothing is ever appended to it
	if !owned {
		data = append([]byte(nil), lines...)
	}
	q.records = append(q.records, record{
		data:     data,
		lines:    n,
		appended: time.Now(),
	})
	q.bytes += size
	q.lines += int64(n)
	if later && !q.later {
		q.later = true
		return nil
	}
	q.wakeNext()
	return nil
}

// Next returns the batch in flight if there is one, else joins the oldest
// records into a new batch of at most maxLines lines and maxBytes bytes (at
// least one record, whatever its size). It waits for a record or ctx.
func (q *MemoryQueue) Next(ctx context.Context, maxLines, maxBytes int) (Batch, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return Batch{}, ErrClosed
		}
		if q.inflight > 0 {
			b := q.batch
			q.mu.Unlock()
			return b, nil
		}
		if q.head < len(q.records) {
			b := q.take(maxLines, maxBytes)
			q.mu.Unlock()
			return b, nil
		}
		wake := q.wake
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		case <-wake:
		}
	}
}

// take builds the in-flight batch; q.mu is held and a record is waiting.
func (q *MemoryQueue) take(maxLines, maxBytes int) Batch {
	live := q.records[q.head:]
	n, lines, size := 1, live[0].lines, len(live[0].data)
	for n < len(live) && lines+live[n].lines <= maxLines && size+len(live[n].data) <= maxBytes {
		lines += live[n].lines
		size += len(live[n].data)
		n++
	}
	data := live[0].data
	if n > 1 {
		q.joined = q.joined[:0]
		for _, r := range live[:n] {
			q.joined = append(q.joined, r.data...)
		}
		data = q.joined
	}
	q.seq++
	q.inflight = n
	q.batch = Batch{Data: data, Lines: lines, Appended: live[0].appended, Seq: q.seq}
	return q.batch
}

// Commit removes the in-flight batch b.
func (q *MemoryQueue) Commit(b Batch) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.inflight == 0 || b.Seq != q.batch.Seq {
		return fmt.Errorf("commit of batch %d, which is not the batch in flight", b.Seq)
	}
	for i := q.head; i < q.head+q.inflight; i++ {
		q.bytes -= int64(len(q.records[i].data))
		q.lines -= int64(q.records[i].lines)
		q.records[i] = record{}
	}
	q.head += q.inflight
	q.inflight = 0
	q.batch = Batch{}
	// Reclaim the dead prefix once it is at least half the slice, so the
	// copy costs no more than the appends that made it.
	if q.head >= len(q.records)/2 {
		n := copy(q.records, q.records[q.head:])
		clear(q.records[n:])
		q.records = q.records[:n]
		q.head = 0
	}
	return nil
}

// Stats reports what the queue holds and has dropped.
func (q *MemoryQueue) Stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := QueueStats{
		Bytes:        q.bytes,
		Records:      int64(len(q.records) - q.head),
		Lines:        q.lines,
		MaxBytes:     q.maxBytes,
		DroppedLines: maps.Clone(q.dropped),
	}
	if q.head < len(q.records) {
		st.Oldest = q.records[q.head].appended
	}
	return st
}

// Close makes later calls fail with ErrClosed and wakes a waiting Next. What
// was queued is lost with the process.
func (q *MemoryQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.wake)
	}
	return nil
}
