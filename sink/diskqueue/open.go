package diskqueue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// load rebuilds the queue from the directory: position, saved states, then
// every segment in offset order, repairing what it finds damaged. Only an
// unreadable directory is an error.
func (q *Queue) load() error {
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return fmt.Errorf("diskqueue: read directory: %w", err)
	}
	var starts []int64
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == lockName || name == positionName || name == stateName:
		case strings.HasSuffix(name, tmpSuffix):
			// Left by a crash inside writeFileAtomic; the old file is intact.
			_ = os.Remove(filepath.Join(q.dir, name))
		case strings.Contains(name, corruptMark):
		default:
			if start, ok := parseSegName(name); ok && e.Type().IsRegular() {
				starts = append(starts, start)
				continue
			}
			q.log.Warn("ignoring a file that is not the queue's", "file", name)
		}
	}
	slices.Sort(starts)

	b, err := os.ReadFile(filepath.Join(q.dir, positionName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		q.log.Error("cannot read the queue position; everything on disk will be sent again", "err", err)
	default:
		if q.readPos, err = decodePosition(b); err != nil {
			q.log.Error("the queue position file is corrupt; everything on disk will be sent again", "err", err)
		}
	}
	q.loadStates()

	q.nextOff = q.readPos
	for _, st := range q.states {
		q.nextOff = max(q.nextOff, st.off+1)
	}
	for i, start := range starts {
		s := &segment{start: start}
		if n := len(q.segs); n > 0 && start < q.segs[n-1].end() {
			q.quarantine(s, "it overlaps the previous segment")
			continue
		}
		if n := len(q.segs); n > 0 && start > q.segs[n-1].end() && start > q.readPos {
			q.log.Warn("gap in the queue: a segment was removed by hand or dropped over the cap before a restart",
				"from", q.segs[n-1].end(), "to", start)
		}
		recs, states, ok := q.loadSegment(s, i == len(starts)-1)
		if !ok {
			continue
		}
		q.segs = append(q.segs, s)
		q.disk += s.size
		q.nextOff = max(q.nextOff, s.end())
		for _, r := range recs {
			q.bytes += int64(r.dataLen)
			q.lines += int64(r.lines)
		}
		q.recs = append(q.recs, recs...)
		for k, st := range states {
			if cur, ok := q.states[k]; !ok || st.off > cur.off {
				q.states[k] = st
			}
		}
	}

	// Keep appending to the last segment if it ends where the queue does.
	if n := len(q.segs); n > 0 {
		s := q.segs[n-1]
		if s.end() == q.nextOff && s.size < q.opts.SegmentSize {
			f, err := os.OpenFile(q.segPath(s.start), os.O_RDWR, 0)
			if err != nil {
				return fmt.Errorf("diskqueue: open segment for writing: %w", err)
			}
			s.f = f
			q.active = s
			// What a killed process left in the page cache becomes durable now.
			q.dirty = true
			if err := q.syncActive(); err != nil {
				return fmt.Errorf("diskqueue: fsync: %w", err)
			}
		}
	}
	// Everything read back is what the disk holds now.
	q.durable = q.nextOff
	q.deleteDead()
	return nil
}

// loadStates indexes the state file, leaving the states in it: it is kept
// open to read them from when asked.
func (q *Queue) loadStates() {
	f, err := os.Open(filepath.Join(q.dir, stateName))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var states map[string]savedState
	if err == nil {
		q.tail = make([]byte, writeBuffer)
		if err = verifyStateFile(f, q.tail); err == nil {
			states, err = indexStates(f)
		}
	}
	switch {
	case errors.Is(err, errBadFile):
		q.log.Error("the saved collector state is corrupt; using the states in segments", "err", err)
	case err != nil:
		q.log.Error("cannot read the saved collector state; using the states in segments", "err", err)
	default:
		q.states, q.stateFile, q.stateChecked = states, f, true
		return
	}
	if f != nil {
		_ = f.Close()
	}
}

// loadSegment reads one segment, collecting its waiting records and states.
// A torn record at the end of the last segment is cut. Any other damage is
// corruption: the file is copied aside, each damaged stretch is overwritten
// with padding (or cut at the end) so offsets stay valid, and the lines lost
// are counted. ok is false if the segment cannot be used at all.
func (q *Queue) loadSegment(s *segment, last bool) (recs []recMeta, states map[string]savedState, ok bool) {
	path := q.segPath(s.start)
	data, err := os.ReadFile(path)
	if err != nil {
		q.quarantine(s, fmt.Sprintf("it cannot be read: %v", err))
		return nil, nil, false
	}
	states = map[string]savedState{}
	var holes [][2]int
	cut, corrupt := -1, false
	// An append split into records (a group) keeps its data only with its
	// last record, which has the state. group is where the group being read
	// began (-1: none), groupRecs how many waiting records came before it,
	// groupTime the append time its records share, groupDamaged whether
	// damage was met inside it.
	group, groupRecs, groupTime, groupDamaged := -1, 0, int64(0), false
	dropGroup := func(end int, why string) {
		lost := 0
		for _, r := range recs[groupRecs:] {
			lost += r.lines
			s.live--
		}
		recs = recs[:groupRecs]
		if why == "" {
			q.log.Warn("cutting the records of an append cut short by an unclean shutdown",
				"segment", segName(s.start), "offset", group, "lines", lost)
		} else {
			corrupt = true
			if s.start+int64(end) > q.readPos {
				q.dropped[ReasonCorrupt] += int64(lost)
			}
			q.log.Error("dropping the records of an append whose last record is lost", "segment", segName(s.start),
				"offset", group, "lines", lost, "reason", why)
		}
	}
	for off := 0; off < len(data); {
		rec, err := decodeRecord(data[off:])
		if err == nil {
			if rec.kind == kindRecord {
				if group >= 0 && rec.appended != groupTime {
					// Another append begins: the group's last record was lost.
					dropGroup(off, "damage")
					holes = append(holes, [2]int{group, off})
					group = -1
				}
				switch {
				case rec.flags&flagContinued == 0:
					group = -1
				case group < 0:
					group, groupRecs, groupTime, groupDamaged = off, len(recs), rec.appended, false
				}
				at := s.start + int64(off)
				if len(rec.key) > 0 {
					states[string(rec.key)] = savedState{off: at, seg: s, at: int64(off), n: len(rec.state)}
					s.hasState = true
				}
				if len(rec.data) > 0 && at >= q.readPos {
					recs = append(recs, recMeta{seg: s, off: int64(off), size: int64(rec.size),
						dataLen: len(rec.data), lines: rec.lines, appended: rec.appended})
					s.live++
				}
			}
			off += rec.size
			continue
		}
		next := resync(data, off+headerSize)
		if next < 0 {
			cut = off
			// A crash while appending leaves a short record or garbage with
			// no sane header at the end of the newest segment; a complete
			// record that fails its checksum is damage.
			if last && !errors.Is(err, errChecksum) {
				q.log.Warn("cutting a torn record at the end of the queue, left by an unclean shutdown",
					"segment", segName(s.start), "offset", off, "bytes", len(data)-off)
			} else {
				corrupt = true
				groupDamaged = groupDamaged || group >= 0
				q.lostCorrupt(s, off, data[off:], err)
			}
			break
		}
		corrupt = true
		groupDamaged = groupDamaged || group >= 0
		q.lostCorrupt(s, off, data[off:next], err)
		holes = append(holes, [2]int{off, next})
		off = next
	}
	if group >= 0 {
		// The segment ends inside a group. At the end of the newest segment,
		// with no damage seen, a crash cut the append short (with fsync
		// "always" it was never acknowledged); otherwise it is damage or a
		// failed write, and counted.
		why := ""
		if !last || groupDamaged {
			why = "damage"
		}
		dropGroup(len(data), why)
		cut = group
	}
	s.size = int64(len(data))
	if cut >= 0 {
		s.size = int64(cut)
	}
	if cut < 0 && !corrupt {
		return recs, states, true
	}
	if corrupt {
		if err := q.copyAside(path, data); err != nil {
			q.log.Warn("cannot keep a copy of a corrupt segment", "segment", segName(s.start), "err", err)
		}
	}
	if err := repair(path, holes, cut); err != nil {
		// The file stays as it is; skip it rather than refuse to start.
		lost := 0
		for _, r := range recs {
			lost += r.lines
		}
		q.dropped[ReasonCorrupt] += int64(lost)
		q.log.Error("cannot repair a queue segment; skipping it", "segment", segName(s.start), "lines", lost, "err", err)
		return nil, nil, false
	}
	return recs, states, true
}

func repair(path string, holes [][2]int, cut int) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	for _, h := range holes {
		if _, err = f.WriteAt(padRecord(h[1]-h[0]), int64(h[0])); err != nil {
			break
		}
	}
	if err == nil && cut >= 0 {
		err = f.Truncate(int64(cut))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// lostCorrupt counts and logs a damaged stretch; damage to records already
// committed loses nothing.
func (q *Queue) lostCorrupt(s *segment, off int, region []byte, err error) {
	if s.start+int64(off+len(region)) <= q.readPos {
		q.log.Warn("repairing damage in committed queue records", "segment", segName(s.start), "offset", off, "bytes", len(region), "err", err)
		return
	}
	lines := lostLines(region)
	q.dropped[ReasonCorrupt] += int64(lines)
	q.log.Error("queue segment is corrupt; dropping the damaged records", "segment", segName(s.start), "offset", off,
		"bytes", len(region), "lines", lines, "err", err)
}

// quarantine moves a segment the queue cannot use out of its way.
func (q *Queue) quarantine(s *segment, why string) {
	path := q.segPath(s.start)
	data, _ := os.ReadFile(path)
	lines := lostLines(data)
	q.dropped[ReasonCorrupt] += int64(lines)
	q.nextOff = max(q.nextOff, s.start+int64(len(data)))
	err := os.Rename(path, q.asideName(path))
	q.log.Error("moved a queue segment aside", "segment", segName(s.start), "reason", why, "lines", lines, "err", err)
}

func (q *Queue) copyAside(path string, data []byte) error {
	return writeFileAtomic(q.dir, filepath.Base(q.asideName(path)), data, true)
}

// asideName picks an unused name for a copy of a damaged segment.
func (q *Queue) asideName(path string) string {
	name := path + corruptMark
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s%s.%d", path, corruptMark, i)
	}
}
