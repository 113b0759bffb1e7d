package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// A group is one append written a record at a time: the collector hands a
// scrape's records over while it converts the page, so that neither it nor
// the queue holds the scrape whole, and the records still survive a crash
// together with the state that ends them, or not at all.
//
// Its records go straight to the end of the active segment, flagged
// continued and stamped with the group's time, but the queue does not count
// them (Next, Stats) until CommitGroup has written the last record, the one
// with the state, and synced it. A group is never split across segments:
// Open's rule for a torn group (a group whose last record is missing at the
// end of the newest segment is dropped whole) needs its records contiguous
// at the end of the file.
type group struct {
	key  string
	seg  *segment
	now  int64 // the append time all its records share
	size int64 // bytes written after seg.size
	recs []recMeta
	// bytes and lines of data written; stateAt the segment offset of the
	// last record, once written.
	bytes, lines int64
	stateAt      int64
	// err is set when the group failed: its records are gone from the file
	// and the calls until CommitGroup or AbortGroup return it. tooLarge: it
	// was over the cap, and the lines handed to it are counted buffer_full.
	err      error
	tooLarge bool
}

// errAborted ends a group that AbortGroup took back.
var errAborted = errors.New("diskqueue: group aborted")

func checkKey(key string) error {
	if key == "" || len(key) > math.MaxUint16 {
		return fmt.Errorf("diskqueue: state key must have 1 to %d bytes, got %d", math.MaxUint16, len(key))
	}
	return nil
}

// BeginGroup opens a group of records that ends with the state of key. It
// waits for the group open, if any, to end; until this one ends, other
// appends wait. Every BeginGroup that returns nil must be followed by
// CommitGroup or AbortGroup with the same key.
func (q *Queue) BeginGroup(key string) error {
	return q.BeginGroupContext(context.Background(), key)
}

// BeginGroupContext is BeginGroup that stops waiting when ctx ends, and
// then returns ctx's error.
func (q *Queue) BeginGroupContext(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := q.gmu.LockContext(ctx); err != nil {
		return err
	}
	if err := q.beginGroup(key); err != nil {
		q.gmu.Unlock()
		return err
	}
	return nil
}

// TryBeginGroup is BeginGroup that does not wait: ok is false when another
// group is open or an append is being written.
func (q *Queue) TryBeginGroup(key string) (ok bool, err error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	if !q.gmu.TryLock() {
		return false, nil
	}
	if err := q.beginGroup(key); err != nil {
		q.gmu.Unlock()
		return false, err
	}
	return true, nil
}

func (q *Queue) beginGroup(key string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	// The group will not be split, so seal first if the last group of the
	// key would take the segment past its size.
	if s := q.active; s != nil && s.size > 0 && s.size+max(q.groupSize[key], 1) > q.opts.SegmentSize {
		q.seal()
	}
	if q.active == nil {
		if err := q.createSegment(); err != nil {
			return err
		}
	}
	now := max(time.Now().UnixNano(), q.lastAppend+1)
	q.lastAppend = now
	q.group = &group{key: key, seg: q.active, now: now, recs: q.groupRecs[:0]}
	return nil
}

// openGroup returns the open group of key. The caller holds q.mu.
func (q *Queue) openGroup(key string) (*group, error) {
	if g := q.group; g != nil && g.key == key {
		return g, nil
	}
	if q.closed {
		return nil, ErrClosed
	}
	return nil, fmt.Errorf("diskqueue: no group open for key %q", key)
}

// AppendGroup writes n newline-terminated lines to the open group of key,
// split into records as Append splits them. They become visible only with
// CommitGroup. On an error (lines that are not a run of newline-terminated
// lines included) the group has failed: what it wrote is taken back, and
// CommitGroup returns the error. A group larger than the cap fails with
// ErrTooLarge, and every line handed to it is counted buffer_full, as an
// append larger than the cap is.
func (q *Queue) AppendGroup(key string, lines []byte, n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	g, err := q.openGroup(key)
	if err != nil {
		return err
	}
	if g.err != nil {
		if g.tooLarge && n > 0 {
			q.dropped[ReasonBufferFull] += int64(n)
		}
		return g.err
	}
	// Lines refused fail the group too: committing the rest would keep a
	// state that accounts for lines the queue does not have.
	if err := checkLines(lines, n); err != nil {
		q.failGroup(g, err)
		return err
	}
	if n == 0 {
		return nil
	}
	chunks, err := q.split(q.chunks[:0], lines, n)
	if err != nil {
		q.failGroup(g, err)
		return err
	}
	q.chunks = chunks
	return q.writeInGroup(g, chunks, false, stateSource{}, n)
}

// CommitGroup ends the open group of key with a record of its last n lines
// (none is fine) and the state, syncs it under fsync "always", and only
// then makes the group's records visible to Next and Stats and the state
// the newest of key. After a crash before it returned, Open finds none of
// the group. It ends the group whatever it returns.
func (q *Queue) CommitGroup(key string, lines []byte, n int, state []byte) error {
	return q.commitGroup(key, lines, n, stateBytes(state))
}

// CommitGroupFrom is CommitGroup with a state of stateLen bytes that
// writeState writes into its record as it produces them, so that it is
// never held whole: a large Traefik's is megabytes, after every scrape. Any
// other count of bytes written fails the group.
func (q *Queue) CommitGroupFrom(key string, lines []byte, n int, stateLen int, writeState func(w io.Writer) error) error {
	return q.commitGroup(key, lines, n, stateSource{Len: stateLen, Write: writeState})
}

func (q *Queue) commitGroup(key string, lines []byte, n int, state stateSource) error {
	q.mu.Lock()
	g, err := q.openGroup(key)
	if err != nil {
		q.mu.Unlock()
		return err
	}
	if err := checkLines(lines, n); err != nil && g.err == nil {
		q.failGroup(g, err)
	}
	if g.err == nil {
		chunks, err := q.split(q.chunks[:0], lines, n)
		if err != nil {
			q.failGroup(g, err)
		} else {
			q.chunks = chunks
			_ = q.writeInGroup(g, chunks, true, state, n) // on failure g.err says why
		}
	} else if g.tooLarge {
		q.dropped[ReasonBufferFull] += int64(n)
	}
	if g.err != nil {
		q.endGroup(g)
		q.mu.Unlock()
		return g.err
	}
	// The sync is the long part of a commit: it runs without q.mu, so that
	// the sender goes on meanwhile. Nothing else writes to the file (gmu),
	// and Close, if it comes in between, takes the group back.
	s, f := g.seg, g.seg.f
	q.mu.Unlock()
	var serr error
	if q.opts.Fsync == FsyncAlways {
		serr = f.Sync()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.endGroup(g)
	if g.err != nil {
		return g.err
	}
	if serr != nil {
		q.failGroup(g, fmt.Errorf("diskqueue: fsync %s: %w", segName(s.start), serr))
		return g.err
	}
	q.recs = append(q.recs, g.recs...)
	s.live += len(g.recs)
	s.size += g.size
	q.nextOff = s.end()
	q.bytes += g.bytes
	q.lines += g.lines
	q.states[key] = savedState{off: s.start + g.stateAt, seg: s, at: g.stateAt, n: state.Len}
	s.hasState = true
	q.groupSize[key] = g.size
	q.dirty = true
	if q.opts.Fsync == FsyncAlways {
		// Synced above, and nothing was written since.
		q.dirty = false
		q.durable = max(q.durable, s.end())
		q.wakeNext()
		if q.hooks.synced != nil {
			q.hooks.synced(q.segPath(s.start), s.size)
		}
	}
	return nil
}

// AbortGroup takes back the open group of key: nothing of it is kept. It
// does nothing when key has no group open, so it can be deferred.
func (q *Queue) AbortGroup(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	g := q.group
	if g == nil || g.key != key {
		return
	}
	if g.err == nil {
		q.failGroup(g, errAborted)
	}
	q.endGroup(g)
}

// writeInGroup writes chunks at the end of g, making room under the cap a
// record at a time; final: the last chunk ends the group with g's key and
// state. The caller holds q.mu. On an error g fails.
func (q *Queue) writeInGroup(g *group, chunks []chunk, final bool, state stateSource, n int) error {
	var size, data int64
	fits := true
	for i, c := range chunks {
		rs := headerSize + len(c.data)
		if final && i == len(chunks)-1 {
			rs += len(g.key) + state.Len
		}
		fits = fits && rs-headerSize <= maxPayload
		size += int64(rs)
		data += int64(len(c.data))
	}
	if !fits || g.size+size > q.opts.MaxBytes {
		lost := g.lines + int64(n)
		q.dropped[ReasonBufferFull] += lost
		q.failGroup(g, fmt.Errorf("%w: a group of more than %d bytes, the cap is %d; dropped %d lines", ErrTooLarge, g.size+size, q.opts.MaxBytes, lost))
		g.tooLarge = true
		return g.err
	}
	q.makeRoom(size)
	s := g.seg
	at := s.size + g.size
	if err := q.writeGroup(s, at, chunks, final, g.key, state, g.now); err != nil {
		q.failGroup(g, fmt.Errorf("diskqueue: write %s: %w", segName(s.start), err))
		return g.err
	}
	for i, c := range chunks {
		rs := int64(headerSize + len(c.data))
		if final && i == len(chunks)-1 {
			rs += int64(len(g.key) + state.Len)
			g.stateAt = at
		}
		if c.lines > 0 {
			g.recs = append(g.recs, recMeta{seg: s, off: at, size: rs, dataLen: len(c.data), lines: c.lines, appended: g.now})
		}
		at += rs
	}
	g.size += size
	g.bytes += data
	g.lines += int64(n)
	q.disk += size
	q.dirty = true // under fsync "interval" the loop syncs the group as it grows
	return nil
}

// failGroup takes back what g wrote and keeps err for the calls to come.
// If the file cannot be cut, the segment is sealed and the repair on open
// drops the group. The caller holds q.mu.
func (q *Queue) failGroup(g *group, err error) {
	g.err = err
	if g.size > 0 {
		if terr := g.seg.f.Truncate(g.seg.size); terr != nil {
			q.log.Error("cannot cut a failed group from the queue segment; it is dropped on the next open", "segment", segName(g.seg.start), "err", terr)
			if q.active == g.seg {
				q.group = nil // seal would keep an open group's segment
				q.seal()
				q.group = g
			}
		}
		q.disk -= g.size
	}
	g.size, g.bytes, g.lines = 0, 0, 0
	g.recs = g.recs[:0]
}

// endGroup closes g and lets the next append or group in. The caller holds
// q.mu.
func (q *Queue) endGroup(g *group) {
	q.groupRecs = g.recs[:0]
	q.group = nil
	q.gmu.Unlock()
}

func checkLines(data []byte, n int) error {
	if (len(data) == 0) != (n == 0) || n < 0 || n > len(data) || n > math.MaxUint32 ||
		(len(data) > 0 && data[len(data)-1] != '\n') {
		return fmt.Errorf("diskqueue: %d lines in %d bytes is not a run of newline-terminated lines", n, len(data))
	}
	return nil
}
