package diskqueue

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
)

// Fsync policies.
const (
	FsyncAlways   = "always"
	FsyncInterval = "interval"
)

// DefaultSegmentSize is the segment size when Options leaves it zero, unless a
// quarter of MaxBytes is smaller: the cap is enforced a segment at a time.
const DefaultSegmentSize = 16 << 20

// Reasons in QueueStats.DroppedLines, shared with the memory queue.
const (
	ReasonBufferFull = sink.ReasonBufferFull
	ReasonCorrupt    = sink.ReasonCorrupt
)

var (
	// ErrClosed is returned by every method after Close; it is the memory
	// queue's, so that callers need not know which queue they have.
	ErrClosed = sink.ErrClosed
	// ErrTooLarge is returned by Append for a record that cannot fit under
	// MaxBytes even in an empty queue. Like the memory queue, the queue counts
	// its lines as buffer_full and keeps nothing of it.
	ErrTooLarge = errors.New("diskqueue: record larger than the queue")
)

// Options configures a Queue; see config.Buffer for the keys they come from.
type Options struct {
	// MaxBytes caps the segment files on disk, headers and committed space
	// not yet reclaimed included.
	MaxBytes int64
	// Fsync is FsyncAlways (each Append is synced before it returns) or
	// FsyncInterval (synced every FsyncInterval and when a segment is full).
	Fsync         string
	FsyncInterval time.Duration
	// SegmentSize is the size at which a segment file is closed and a new one
	// begun. Zero picks DefaultSegmentSize or MaxBytes/4, the smaller.
	SegmentSize int64
	// RecordMaxLines and RecordMaxBytes (batch.max_lines, batch.max_bytes)
	// split a larger append into records that fit a batch; the records of
	// one append are still kept or lost together. Zero means no limit.
	RecordMaxLines int
	RecordMaxBytes int
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxBytes <= 0 {
		return o, fmt.Errorf("diskqueue: max bytes must be positive, got %d", o.MaxBytes)
	}
	switch o.Fsync {
	case "":
		o.Fsync = FsyncAlways
	case FsyncAlways:
	case FsyncInterval:
		if o.FsyncInterval <= 0 {
			return o, fmt.Errorf("diskqueue: fsync interval must be positive, got %s", o.FsyncInterval)
		}
	default:
		return o, fmt.Errorf("diskqueue: fsync must be %q or %q, got %q", FsyncAlways, FsyncInterval, o.Fsync)
	}
	switch {
	case o.SegmentSize == 0:
		o.SegmentSize = min(DefaultSegmentSize, max(o.MaxBytes/4, 4096))
	case o.SegmentSize < 0 || o.SegmentSize > o.MaxBytes/2:
		return o, fmt.Errorf("diskqueue: segment size must be positive and at most half of max bytes (%d), got %d", o.MaxBytes, o.SegmentSize)
	}
	return o, nil
}

// segment is one file of records. Its name is the queue offset of its first
// byte; offsets only grow, so a record is known by start+offset forever.
type segment struct {
	start    int64
	size     int64
	f        *os.File // opened on first read or write
	live     int      // data records neither committed nor dropped, in flight included
	inflight int      // data records in the batch in flight
	hasState bool     // holds state records, which must be saved aside before deletion
}

func (s *segment) end() int64 { return s.start + s.size }

// recMeta locates a waiting data record; it is all Next needs to build a batch.
type recMeta struct {
	seg      *segment
	off      int64 // within the segment
	size     int64 // header and payload
	dataLen  int
	lines    int
	appended int64
}

type inflight struct {
	recs  []recMeta
	batch sink.Batch
}

// hooks let tests observe durability; the zero value does nothing.
type hooks struct {
	// synced reports that a segment file is durable up to size bytes.
	synced func(path string, size int64)
}

// Queue is a durable sink.Queue in one directory. It is safe for concurrent
// use: Append, AppendWithState, SaveState and groups from many goroutines
// (each group from the goroutine that began it), Next and Commit from one
// sender.
type Queue struct {
	dir   string
	opts  Options
	log   *slog.Logger
	hooks hooks
	lockF *os.File

	// gmu keeps appends from interleaving in the file: an append holds it
	// for its write, an open group from BeginGroup to CommitGroup or
	// AbortGroup. It is taken before mu, which guards everything else and
	// is held only for a record's write at a time, so the sender's Next and
	// Commit are not kept waiting for the length of a scrape.
	gmu waitLock

	mu         sync.Mutex
	closed     bool
	segs       []*segment // oldest first
	active     *segment   // the last segment, receiving appends; nil until the next append
	nextOff    int64      // queue offset of the next appended record
	durable    int64      // queue offset up to which the segments are synced
	readPos    int64      // everything before it is committed
	disk       int64      // bytes in segment files
	recs       []recMeta  // waiting records: recs[head:], oldest first
	head       int
	cur        *inflight
	seq        uint64
	bytes      int64 // line-protocol bytes waiting, in flight included
	lines      int64
	dropped    map[string]int64
	states     map[string]savedState
	wake       chan struct{}    // closed when a record arrives or the queue closes
	dirty      bool             // the active segment has unsynced bytes
	lastAppend int64            // Unix ns of the last append
	chunks     []chunk          // reused by append
	group      *group           // the open group, nil if none
	groupRecs  []recMeta        // reused by groups
	groupSize  map[string]int64 // size of each key's last group, to seal before the next
	// wbuf gathers small pieces of a group (headers, keys, short payloads)
	// into fewer writes; payloads are written from the caller's memory.
	wbuf *bufio.Writer
	rbuf []byte
	tail []byte // scratch for the key and state of a record being read

	// stateFile is the state file, kept open: the states whose segment is
	// gone are read from it. A new state file is renamed over the path
	// before this one is switched to it, and until then it reads the file
	// the positions in states point into.
	stateFile *os.File
	// stateChecked says the checksum of stateFile was verified. It covers
	// the whole file only, so it is read whole once, before a state is first
	// read from the file, and not for every state.
	stateChecked bool
	// posFile is the position file, kept open for Commit (savePosition).
	posFile *os.File

	stop chan struct{}
	wg   sync.WaitGroup
}

var (
	_ sink.Queue         = (*Queue)(nil)
	_ sink.LaterAppender = (*Queue)(nil)
)

// Open opens or creates the queue in dir. It fails only when dir cannot be
// used (cannot be created, written or locked); damaged queue files are
// repaired, logged and counted instead. A nil log discards messages.
func Open(dir string, opts Options, log *slog.Logger) (*Queue, error) {
	return open(dir, opts, log, hooks{})
}

func open(dir string, opts Options, log *slog.Logger, h hooks) (*Queue, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("diskqueue: cannot create directory: %w", err)
	}
	lockF, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("diskqueue: directory %q is not writable: %w", dir, err)
	}
	if err := lockFile(lockF); err != nil {
		_ = lockF.Close()
		return nil, fmt.Errorf("diskqueue: cannot lock %q: %w", dir, err)
	}
	// The lock file may be old: prove that new files can be created too.
	probe, err := os.CreateTemp(dir, "probe-*"+tmpSuffix)
	if err == nil {
		_ = probe.Close()
		err = os.Remove(probe.Name())
	}
	if err != nil {
		_ = lockF.Close()
		return nil, fmt.Errorf("diskqueue: directory %q is not writable: %w", dir, err)
	}
	q := &Queue{
		gmu:     newWaitLock(),
		dir:     dir,
		opts:    opts,
		log:     log.With("queue_dir", dir),
		hooks:   h,
		lockF:   lockF,
		dropped: map[string]int64{ReasonBufferFull: 0, ReasonCorrupt: 0},
		states:  map[string]savedState{},

		groupSize: map[string]int64{},
	}
	if err := q.load(); err != nil {
		_ = q.closeFiles()
		return nil, err
	}
	if opts.Fsync == FsyncInterval {
		q.stop = make(chan struct{})
		q.wg.Add(1)
		go q.syncLoop(opts.FsyncInterval)
	}
	return q, nil
}

func (q *Queue) segPath(start int64) string { return filepath.Join(q.dir, segName(start)) }

// Append adds n newline-terminated lines as one record.
func (q *Queue) Append(lines []byte, n int) error {
	if len(lines) == 0 && n == 0 {
		return nil
	}
	return q.append(lines, n, "", nil, false)
}

// AppendLater adds lines as Append does, but with fsync "always" it does not
// sync them on their own: they become durable, and may be sent, with the next
// append that syncs, so that the two take one fsync and go out in one batch.
// An AppendLater that finds records still unsynced syncs them and itself, so
// its lines wait at most until the next AppendLater. With fsync "interval" it
// is Append. A crash before the sync loses them, as it loses the appends of
// the last fsync_interval under "interval".
func (q *Queue) AppendLater(lines []byte, n int) error {
	if len(lines) == 0 && n == 0 {
		return nil
	}
	return q.append(lines, n, "", nil, true)
}

// Release syncs what AppendLater wrote and no sync has covered yet, so that
// it may be sent: before the last flush at shutdown.
func (q *Queue) Release() error {
	q.gmu.Lock() // not in the middle of a group or an append
	defer q.gmu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || !q.dirty {
		return nil
	}
	if err := q.syncActive(); err != nil {
		return fmt.Errorf("diskqueue: fsync %s: %w", segName(q.active.start), err)
	}
	return nil
}

// AppendWithState adds n lines and the state of key as one record: after a
// crash both are there or neither is. With no lines (nil, 0) it saves the state
// alone. LoadState returns the state of the newest such record.
func (q *Queue) AppendWithState(lines []byte, n int, key string, state []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return q.append(lines, n, key, state, false)
}

// SaveState records the state of key, ordered with the records around it.
func (q *Queue) SaveState(key string, state []byte) error {
	return q.AppendWithState(nil, 0, key, state)
}

// LoadState returns the newest state saved for key, or nil if there is none.
func (q *Queue) LoadState(key string) ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	s, ok := q.states[key]
	if !ok {
		return nil, nil
	}
	if s.seg == nil && !q.checkStateFile() {
		return nil, nil // forgotten: the key starts with a baseline
	}
	return q.readState(s)
}

// readState reads back the state s points to. The state returned is the
// caller's.
func (q *Queue) readState(s savedState) ([]byte, error) {
	b := bytes.NewBuffer(make([]byte, 0, s.n))
	if _, err := q.copyState(s, b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// copyState streams the state s points to into w, a piece at a time through
// q.tail, and returns its length. From a segment it checks the record's
// checksum at the end: w has had all of it when the error says it is
// damaged. From the state file it checks nothing: the caller verifies the
// file first (checkStateFile).
func (q *Queue) copyState(s savedState, w io.Writer) (int, error) {
	if q.tail == nil {
		q.tail = make([]byte, writeBuffer)
	}
	if s.seg == nil {
		for off, end := s.at, s.at+int64(s.n); off < end; {
			p := q.tail[:min(end-off, int64(len(q.tail)))]
			if _, err := q.stateFile.ReadAt(p, off); err != nil {
				return 0, fmt.Errorf("diskqueue: read state: %w", err)
			}
			if _, err := w.Write(p); err != nil {
				return 0, err
			}
			off += int64(len(p))
		}
		return s.n, nil
	}
	var hb [headerSize]byte
	if err := q.readAt(s.seg, hb[:], s.at); err != nil {
		return 0, fmt.Errorf("diskqueue: read state: %w", err)
	}
	h, err := parseHeader(hb[:])
	if err != nil || h.kind != kindRecord || h.keyLen == 0 || h.stateLen != s.n {
		return 0, fmt.Errorf("diskqueue: read state: %w", errHeader)
	}
	sum := crc32.Update(0, castagnoli, hb[:28])
	off, stateAt, end := s.at+headerSize, s.at+int64(headerSize+h.dataLen+h.keyLen), s.at+int64(headerSize+h.payloadLen())
	for off < end {
		// Up to the state, the lines and the key go through the checksum only.
		limit := end
		if off < stateAt {
			limit = stateAt
		}
		p := q.tail[:min(limit-off, int64(len(q.tail)))]
		if err := q.readAt(s.seg, p, off); err != nil {
			return 0, fmt.Errorf("diskqueue: read state: %w", err)
		}
		sum = crc32.Update(sum, castagnoli, p)
		if off >= stateAt {
			if _, err := w.Write(p); err != nil {
				return 0, err
			}
		}
		off += int64(len(p))
	}
	if sum != h.sum {
		return 0, fmt.Errorf("diskqueue: read state: %w", errChecksum)
	}
	return h.stateLen, nil
}

func (q *Queue) append(data []byte, n int, key string, state []byte, later bool) error {
	if err := checkLines(data, n); err != nil {
		return err
	}
	q.gmu.Lock()
	defer q.gmu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	chunks, err := q.split(q.chunks[:0], data, n)
	if err != nil {
		return err
	}
	q.chunks = chunks
	payload := len(data) + len(key) + len(state)
	size := int64(len(chunks)*headerSize + payload)
	if len(data) > maxPayload || len(key)+len(state) > maxPayload-len(chunks[len(chunks)-1].data) || size > q.opts.MaxBytes {
		q.dropped[ReasonBufferFull] += int64(n)
		return fmt.Errorf("%w: %d bytes, the cap is %d; dropped %d lines", ErrTooLarge, size, q.opts.MaxBytes, n)
	}
	q.makeRoom(size)
	if q.active != nil && q.active.size > 0 && q.active.size+size > q.opts.SegmentSize {
		q.seal()
	}
	if q.active == nil {
		if err := q.createSegment(); err != nil {
			return err
		}
	}
	s := q.active
	// Appends are told apart by their time on open, so no two share one.
	now := max(time.Now().UnixNano(), q.lastAppend+1)
	q.lastAppend = now
	if err := q.writeGroup(s, s.size, chunks, true, key, stateBytes(state), now); err != nil {
		// Take back whatever part was written so the next record does not
		// follow garbage; if even that fails, leave the file to the repair
		// on open and write elsewhere.
		if terr := s.f.Truncate(s.size); terr != nil {
			q.seal()
		}
		return fmt.Errorf("diskqueue: write %s: %w", segName(s.start), err)
	}
	at := s.size // of each record in turn; the last one carries the state
	for i, c := range chunks {
		rs := int64(headerSize + len(c.data))
		if i == len(chunks)-1 {
			rs += int64(len(key) + len(state))
		}
		if c.lines > 0 {
			q.recs = append(q.recs, recMeta{seg: s, off: at, size: rs, dataLen: len(c.data), lines: c.lines, appended: now})
			s.live++
		}
		if i < len(chunks)-1 {
			at += rs
		}
	}
	s.size += size
	q.disk += size
	q.nextOff = s.end()
	q.bytes += int64(len(data))
	q.lines += int64(n)
	if key != "" {
		q.states[key] = savedState{off: s.start + at, seg: s, at: at, n: len(state)}
		s.hasState = true
	}
	unsynced := q.dirty // records of an earlier AppendLater
	q.dirty = true
	if q.opts.Fsync == FsyncAlways && (!later || unsynced) {
		if err := q.syncActive(); err != nil {
			return fmt.Errorf("diskqueue: fsync %s: %w", segName(s.start), err)
		}
	}
	return nil
}

// writeBuffer is the size of wbuf: a group is written in pieces of about
// this size, whatever its own size, instead of being copied whole first
// (a large Traefik's scrape and state are tens of megabytes).
const writeBuffer = 64 << 10

// writeGroup writes records at offset at of s, as appendRecord would lay
// them out, without copying the payloads into one buffer first. All are
// flagged continued but, if final, the last, which carries key and state.
// Nothing is durable before the fsync that follows; a crash in between
// leaves a torn group, which Open drops whole.
func (q *Queue) writeGroup(s *segment, at int64, chunks []chunk, final bool, key string, state stateSource, now int64) error {
	ow := io.NewOffsetWriter(s.f, at)
	if q.wbuf == nil {
		q.wbuf = bufio.NewWriterSize(ow, writeBuffer)
	} else {
		q.wbuf.Reset(ow)
	}
	w := q.wbuf
	defer w.Reset(nil) // keep no reference to the file
	off := at
	for i, c := range chunks {
		if !final || i < len(chunks)-1 {
			h := recordHeader(flagContinued, c.data, c.lines, "", nil, now)
			_, _ = w.Write(h[:])
			_, _ = w.Write(c.data)
			off += int64(headerSize + len(c.data))
			continue
		}
		// The last record carries the state, written as it comes: its
		// checksum is known at the end, so the header goes in last, over
		// the space left for it. Until the group is synced and committed
		// nothing reads it, and a crash before leaves a record that does
		// not check, cut on open with the rest of the group.
		h := headerFields(0, len(c.data), c.lines, len(key), state.Len, now)
		var blank [headerSize]byte
		_, _ = w.Write(blank[:])
		_, _ = w.Write(c.data)
		_, _ = w.WriteString(key)
		cw := crcWriter{w: w, sum: crc32.Update(0, castagnoli, h[:28])}
		cw.sum = crc32.Update(cw.sum, castagnoli, c.data)
		cw.sum = crc32.Update(cw.sum, castagnoli, []byte(key))
		if state.Write != nil {
			if err := state.Write(&cw); err != nil {
				return fmt.Errorf("state: %w", err)
			}
		}
		if cw.n != state.Len {
			return fmt.Errorf("state: %d bytes written, %d announced", cw.n, state.Len)
		}
		binary.LittleEndian.PutUint32(h[28:], cw.sum)
		if err := w.Flush(); err != nil {
			return err
		}
		if _, err := s.f.WriteAt(h[:], off); err != nil {
			return err
		}
	}
	return w.Flush() // a bufio.Writer keeps its first error and returns it here
}

// stateSource is a state written into its record as it is produced: Write
// writes exactly Len bytes to w (nil: none).
type stateSource struct {
	Len   int
	Write func(w io.Writer) error
}

// stateBytes is the stateSource of a state held whole.
func stateBytes(state []byte) stateSource {
	return stateSource{Len: len(state), Write: func(w io.Writer) error {
		_, err := w.Write(state)
		return err
	}}
}

// crcWriter writes to w, keeping the checksum and count of what went by.
type crcWriter struct {
	w   io.Writer
	sum uint32
	n   int
}

func (c *crcWriter) Write(p []byte) (int, error) {
	c.sum = crc32.Update(c.sum, castagnoli, p)
	c.n += len(p)
	return c.w.Write(p)
}

type chunk struct {
	data  []byte
	lines int
}

// split cuts data into records of at most RecordMaxLines lines and
// RecordMaxBytes bytes at line ends (a longer line goes alone), so that one
// append stays one atomic group while every batch keeps to the sender's
// limits. Data within the limits is not looked at.
func (q *Queue) split(out []chunk, data []byte, n int) ([]chunk, error) {
	maxLines, maxBytes := q.opts.RecordMaxLines, q.opts.RecordMaxBytes
	if maxLines <= 0 {
		maxLines = math.MaxInt
	}
	if maxBytes <= 0 {
		maxBytes = math.MaxInt
	}
	if n <= maxLines && len(data) <= maxBytes {
		return append(out, chunk{data: data, lines: n}), nil
	}
	total := 0
	for rest := data; len(rest) > 0; {
		end, k := 0, 0
		for end < len(rest) && k < maxLines {
			next := end + bytes.IndexByte(rest[end:], '\n') + 1
			if k > 0 && next > maxBytes {
				break
			}
			end, k = next, k+1
		}
		out = append(out, chunk{data: rest[:end:end], lines: k})
		total += k
		rest = rest[end:]
	}
	if total != n {
		return nil, fmt.Errorf("diskqueue: %d lines announced, %d found", n, total)
	}
	return out, nil
}

// makeRoom drops whole segments, oldest first, until size more bytes fit
// under the cap. The segment holding the batch in flight is kept until Commit,
// so the cap can be exceeded by that segment for that long; so is the segment
// of an open group (the active one), which is not sealed.
func (q *Queue) makeRoom(size int64) {
	for q.disk+size > q.opts.MaxBytes {
		var victim *segment
		for _, s := range q.segs {
			if s != q.active && s.inflight == 0 {
				victim = s
				break
			}
		}
		if victim == nil {
			// An open group keeps to its segment: it is not sealed.
			if q.active != nil && q.active.size > 0 && q.group == nil {
				q.seal()
				continue
			}
			return
		}
		if err := q.dropSegment(victim); err != nil {
			q.log.Error("cannot drop the oldest queue segment to make room", "segment", segName(victim.start), "err", err)
			return
		}
	}
}

func (q *Queue) dropSegment(s *segment) error {
	if s.hasState {
		if err := q.persistStates(s); err != nil {
			return err
		}
	}
	waiting := q.recs[q.head:]
	i := slices.IndexFunc(waiting, func(r recMeta) bool { return r.seg == s })
	if i >= 0 {
		j := i
		var lines, bytes int64
		for j < len(waiting) && waiting[j].seg == s {
			lines += int64(waiting[j].lines)
			bytes += int64(waiting[j].dataLen)
			j++
		}
		oldest := time.Unix(0, waiting[i].appended)
		q.recs = slices.Delete(q.recs, q.head+i, q.head+j)
		s.live -= j - i
		q.lines -= lines
		q.bytes -= bytes
		q.dropped[ReasonBufferFull] += lines
		q.log.Warn("queue full: dropped the oldest lines", "lines", lines, "records", j-i, "oldest", oldest, "max_bytes", q.opts.MaxBytes)
	}
	return q.removeSegment(s)
}

func (q *Queue) removeSegment(s *segment) error {
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
	if err := os.Remove(q.segPath(s.start)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	q.disk -= s.size
	q.segs = slices.DeleteFunc(q.segs, func(x *segment) bool { return x == s })
	if q.active == s {
		q.active = nil
	}
	return nil
}

// deleteDead removes the segments nothing waits in any more.
func (q *Queue) deleteDead() {
	for i := 0; i < len(q.segs); {
		s := q.segs[i]
		if s == q.active || s.live > 0 {
			i++
			continue
		}
		if s.hasState {
			if err := q.persistStates(s); err != nil {
				q.log.Error("cannot save collector state aside; keeping the segment", "segment", segName(s.start), "err", err)
				return
			}
		}
		if err := q.removeSegment(s); err != nil {
			q.log.Warn("cannot delete a consumed queue segment", "segment", segName(s.start), "err", err)
			i++
		}
	}
}

// persistStates saves every key's newest state in the state file, so that
// segment gone, which holds some of them, can go; the states it holds are
// read from the state file from then on. The active segment is synced first:
// a state must not become durable before the data record it came with. A
// state that no longer reads back is left out and forgotten, and logged: its
// key starts with a baseline. The states are streamed from the segments and
// the old state file into the new one, a piece at a time, after a first pass
// that checks them.
func (q *Queue) persistStates(gone *segment) error {
	if q.dirty {
		if err := q.syncActive(); err != nil {
			return err
		}
	}
	// Damage in the old file must not be carried into the new one, whose
	// checksum would vouch for it.
	q.checkStateFile()
	lens := make(map[string]int, len(q.states))
	for k, st := range q.states {
		if st.seg == nil {
			lens[k] = st.n
			continue
		}
		n, err := q.copyState(st, io.Discard)
		if err != nil {
			q.log.Error("a saved collector state no longer reads back; its target starts with a baseline", "segment", segName(st.seg.start), "offset", st.at, "err", err)
			continue
		}
		lens[k] = n
	}
	at := make(map[string]int64, len(lens)) // where each state goes in the new file
	f, err := writeFile(q.dir, stateName, true, true, func(f io.Writer) error {
		sum := crc32.New(castagnoli)
		w := bufio.NewWriterSize(io.MultiWriter(f, sum), writeBuffer)
		var b []byte
		b = append(b, stateMagic...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(lens)))
		_, _ = w.Write(b)
		pos := int64(len(b))
		for k, n := range lens {
			st := q.states[k]
			b = binary.LittleEndian.AppendUint64(b[:0], uint64(st.off))
			b = binary.LittleEndian.AppendUint16(b, uint16(len(k)))
			b = binary.LittleEndian.AppendUint32(b, uint32(n))
			_, _ = w.Write(b)
			_, _ = w.WriteString(k)
			pos += int64(len(b) + len(k))
			at[k] = pos
			pos += int64(n)
			if _, err := q.copyState(st, w); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		_, err := f.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32()))
		return err
	})
	if err != nil {
		return err
	}
	if q.stateFile != nil {
		_ = q.stateFile.Close()
	}
	q.stateFile, q.stateChecked = f, false
	for k, st := range q.states {
		if st.seg != nil && st.seg != gone {
			continue
		}
		p, ok := at[k]
		if !ok {
			delete(q.states, k)
			continue
		}
		q.states[k] = savedState{off: st.off, at: p, n: lens[k]}
	}
	return nil
}

// checkStateFile verifies the state file's checksum before a state is first
// read from it, and says whether the states there may be read. If the file
// is damaged, the states that are only there are forgotten, and logged:
// their keys start with a baseline.
func (q *Queue) checkStateFile() bool {
	if q.stateChecked {
		return true
	}
	used := false // no state read from the file, nothing to check
	for _, st := range q.states {
		if st.seg == nil {
			used = true
			break
		}
	}
	if !used {
		return true
	}
	if q.tail == nil {
		q.tail = make([]byte, writeBuffer)
	}
	err := verifyStateFile(q.stateFile, q.tail)
	if err == nil {
		q.stateChecked = true
		return true
	}
	var lost []string
	for k, st := range q.states {
		if st.seg == nil {
			lost = append(lost, k)
			delete(q.states, k)
		}
	}
	slices.Sort(lost)
	q.log.Error("saved collector states no longer read back; their targets start with a baseline", "file", stateName, "states", len(lost), "keys", lost, "err", err)
	// Nothing points into it any more; the next state file replaces it.
	_ = q.stateFile.Close()
	q.stateFile = nil
	return false
}

func (q *Queue) createSegment() error {
	path := q.segPath(q.nextOff)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("diskqueue: create segment: %w", err)
	}
	if err := syncDir(q.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("diskqueue: sync directory: %w", err)
	}
	s := &segment{start: q.nextOff, f: f}
	q.segs = append(q.segs, s)
	q.active = s
	return nil
}

// seal ends the active segment; the next append begins a new one.
func (q *Queue) seal() {
	if q.active == nil {
		return
	}
	if q.dirty {
		if err := q.syncActive(); err != nil {
			q.log.Error("cannot fsync a full queue segment; its newest records may be lost on a crash", "segment", segName(q.active.start), "err", err)
		}
	}
	q.active = nil
	q.dirty = false
}

func (q *Queue) syncActive() error {
	s := q.active
	if s == nil {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	q.dirty = false
	if s.end() > q.durable {
		q.durable = s.end()
		q.wakeNext()
	}
	if q.hooks.synced != nil {
		q.hooks.synced(q.segPath(s.start), s.size)
	}
	return nil
}

// wakeNext releases the Next calls waiting for a record or for Close.
func (q *Queue) wakeNext() {
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
}

// sendable reports whether the oldest waiting record may go out: only
// durable records are sent, so a crash cannot take back data that InfluxDB
// already has while the collector state falls back to before it.
func (q *Queue) sendable() bool {
	if q.head == len(q.recs) {
		return false
	}
	r := q.recs[q.head]
	return r.seg.start+r.off+r.size <= q.durable
}

func (q *Queue) syncLoop(every time.Duration) {
	defer q.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-t.C:
			q.mu.Lock()
			if q.dirty {
				if err := q.syncActive(); err != nil {
					q.log.Error("cannot fsync the queue; recent records may be lost on a crash", "err", err)
				}
			}
			q.mu.Unlock()
		}
	}
}

// Next returns the oldest waiting records joined into one batch, or the batch
// already in flight. Records waiting win over a done ctx. With fsync
// "interval", a record waits for its sync before it can be sent.
func (q *Queue) Next(ctx context.Context, maxLines, maxBytes int) (sink.Batch, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return sink.Batch{}, ErrClosed
		}
		if q.cur != nil {
			b := q.cur.batch
			q.mu.Unlock()
			return b, nil
		}
		if q.sendable() {
			b, ok := q.takeBatch(maxLines, maxBytes)
			q.mu.Unlock()
			if ok {
				return b, nil
			}
			continue
		}
		if q.wake == nil {
			q.wake = make(chan struct{})
		}
		wake := q.wake
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return sink.Batch{}, ctx.Err()
		case <-wake:
		}
	}
}

// takeBatch reads the records at the head into one batch and checks each
// record's checksum. Only headers and lines are kept: a record's key and
// state (the collector's state rides on the last record of each scrape) are
// read through a small scratch buffer for the checksum and left behind. A
// record that fails is dropped as corrupt; ok is false if none was left.
func (q *Queue) takeBatch(maxLines, maxBytes int) (sink.Batch, bool) {
	waiting := q.recs[q.head:]
	n, lines, size := 0, 0, 0
	for n < len(waiting) {
		r := waiting[n]
		if r.seg.start+r.off+r.size > q.durable || n > 0 && (lines+r.lines > maxLines || size+r.dataLen > maxBytes) {
			break
		}
		n++
		lines += r.lines
		size += r.dataLen
	}
	take := waiting[:n]
	good := make([]recMeta, 0, n)
	buf := slices.Grow(q.rbuf[:0], headerSize+size)
	for _, r := range take {
		var err error
		if buf, err = q.readData(r, buf); err != nil {
			q.dropCorrupt(r, err)
			continue
		}
		good = append(good, r)
		r.seg.inflight++
	}
	q.rbuf = buf
	q.head += n
	if q.head > 1024 && 2*q.head > len(q.recs) {
		q.recs = slices.Delete(q.recs, 0, q.head)
		q.head = 0
	}
	if len(good) == 0 {
		return sink.Batch{}, false
	}
	lines = 0
	for _, r := range good {
		lines += r.lines
	}
	q.seq++
	b := sink.Batch{Data: buf[:len(buf):len(buf)], Lines: lines, Appended: time.Unix(0, good[0].appended), Seq: q.seq}
	q.cur = &inflight{recs: good, batch: b}
	return b, true
}

// readData appends the lines of record r to dst after checking the record
// whole: its header against what r says, and its checksum over the lines,
// the key and the state. On an error dst comes back as it was.
func (q *Queue) readData(r recMeta, dst []byte) ([]byte, error) {
	base := len(dst)
	head := headerSize + r.dataLen
	dst = slices.Grow(dst, head)[:base+head]
	if err := q.readAt(r.seg, dst[base:], r.off); err != nil {
		return dst[:base], err
	}
	hb := dst[base : base+headerSize]
	h, err := parseHeader(hb)
	if err == nil && (h.kind != kindRecord || h.dataLen != r.dataLen || h.lines != r.lines || int64(headerSize+h.payloadLen()) != r.size) {
		err = errHeader
	}
	if err != nil {
		return dst[:base], err
	}
	sum := crc32.Update(0, castagnoli, hb[:28])
	sum = crc32.Update(sum, castagnoli, dst[base+headerSize:])
	// The key and the state, for the checksum only.
	for off, left := r.off+int64(head), r.size-int64(head); left > 0; {
		if q.tail == nil {
			q.tail = make([]byte, writeBuffer)
		}
		p := q.tail[:min(left, int64(len(q.tail)))]
		if err := q.readAt(r.seg, p, off); err != nil {
			return dst[:base], err
		}
		sum = crc32.Update(sum, castagnoli, p)
		off += int64(len(p))
		left -= int64(len(p))
	}
	if sum != h.sum {
		return dst[:base], errChecksum
	}
	// Squeeze the header out.
	copy(dst[base:], dst[base+headerSize:])
	return dst[:base+r.dataLen], nil
}

func (q *Queue) readAt(s *segment, p []byte, off int64) error {
	if s.f == nil {
		f, err := os.Open(q.segPath(s.start))
		if err != nil {
			return err
		}
		s.f = f
	}
	_, err := s.f.ReadAt(p, off)
	return err
}

// dropCorrupt forgets a waiting record that no longer reads back intact.
func (q *Queue) dropCorrupt(r recMeta, err error) {
	r.seg.live--
	q.bytes -= int64(r.dataLen)
	q.lines -= int64(r.lines)
	q.dropped[ReasonCorrupt] += int64(r.lines)
	q.log.Error("dropped a queue record that no longer reads back intact", "segment", segName(r.seg.start), "offset", r.off, "lines", r.lines, "err", err)
}

// Commit removes the batch in flight and frees the segments it emptied.
func (q *Queue) Commit(b sink.Batch) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.cur == nil || b.Seq != q.cur.batch.Seq {
		return fmt.Errorf("diskqueue: commit of batch %d, which is not the batch in flight", b.Seq)
	}
	var end int64
	for _, r := range q.cur.recs {
		r.seg.live--
		r.seg.inflight--
		q.bytes -= int64(r.dataLen)
		q.lines -= int64(r.lines)
		end = max(end, r.seg.start+r.off+r.size)
	}
	q.cur = nil
	if end > q.readPos {
		q.readPos = end
		if err := q.savePosition(end); err != nil {
			q.log.Warn("cannot save the queue position; committed data may be sent again after a restart", "err", err)
		}
	}
	q.deleteDead()
	return nil
}

// savePosition overwrites the position file in place, through a file kept
// open: a commit per scrape, the temporary file, rename and directory update
// of writeFileAtomic were 4 % of a sidecar's CPU. Not synced: losing it to a
// crash only sends committed data again, which InfluxDB absorbs (same
// series and timestamp overwrite). Its 20 bytes sit in the file's first
// sector, which a power cut leaves old or new; should they come back
// damaged all the same, the checksum says so and everything on disk is
// sent again. Close still replaces the file whole and syncs it.
func (q *Queue) savePosition(pos int64) error {
	b := encodePosition(pos)
	if q.posFile == nil {
		f, err := os.OpenFile(filepath.Join(q.dir, positionName), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		// A longer file, which this queue does not write, would fail the
		// checksum; cut before the write, it still holds the old position.
		if err := f.Truncate(int64(len(b))); err != nil {
			_ = f.Close()
			return err
		}
		q.posFile = f
	}
	_, err := q.posFile.WriteAt(b, 0)
	return err
}

// Stats reports what the queue holds and what it has dropped since Open.
func (q *Queue) Stats() sink.QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := sink.QueueStats{
		Bytes:        q.bytes,
		Records:      int64(len(q.recs) - q.head),
		Lines:        q.lines,
		MaxBytes:     q.opts.MaxBytes,
		DroppedLines: maps.Clone(q.dropped),
	}
	switch {
	case q.cur != nil:
		st.Records += int64(len(q.cur.recs))
		st.Oldest = time.Unix(0, q.cur.recs[0].appended)
	case q.head < len(q.recs):
		st.Oldest = time.Unix(0, q.recs[q.head].appended)
	}
	return st
}

// Close syncs and releases the queue; what was not committed, the batch in
// flight included, is there at the next Open.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	if g := q.group; g != nil && g.err == nil {
		q.failGroup(g, ErrClosed)
	}
	q.wakeNext()
	q.mu.Unlock()
	if q.stop != nil {
		close(q.stop)
		q.wg.Wait()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var errs []error
	if q.dirty {
		if err := q.syncActive(); err != nil {
			errs = append(errs, fmt.Errorf("fsync: %w", err))
		}
	}
	if q.posFile != nil {
		// Closed before its path is replaced, as some systems require.
		errs = append(errs, q.posFile.Close())
		q.posFile = nil
	}
	if err := writeFileAtomic(q.dir, positionName, encodePosition(q.readPos), true); err != nil {
		errs = append(errs, fmt.Errorf("save position: %w", err))
	}
	if err := q.closeFiles(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("diskqueue: close: %w", err)
	}
	return nil
}

func (q *Queue) closeFiles() error {
	var errs []error
	for _, s := range q.segs {
		if s.f != nil {
			errs = append(errs, s.f.Close())
			s.f = nil
		}
	}
	q.active = nil
	if q.stateFile != nil {
		errs = append(errs, q.stateFile.Close())
		q.stateFile = nil
	}
	if q.posFile != nil {
		errs = append(errs, q.posFile.Close())
		q.posFile = nil
	}
	errs = append(errs, q.lockF.Close())
	return errors.Join(errs...)
}
