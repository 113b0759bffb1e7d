package diskqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Names in the queue directory. Anything else is left alone.
const (
	lockName      = "lock"
	positionName  = "position"
	stateName     = "state"
	segSuffix     = ".seg"
	tmpSuffix     = ".tmp"
	corruptMark   = ".corrupt"
	positionMagic = "TIBQPOS1"
	stateMagic    = "TIBQSTA1"
)

// segName names a segment by the queue offset of its first byte, so that
// offsets never repeat and sorting names sorts segments.
func segName(start int64) string { return fmt.Sprintf("%016x%s", start, segSuffix) }

func parseSegName(name string) (int64, bool) {
	hex, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(hex, 16, 63)
	if err != nil {
		return 0, false
	}
	return int64(v), true
}

// writeFileAtomic replaces dir/name with data so that a crash leaves the old or
// the new content, never a mix. With durable, the content and the rename are
// synced before it returns.
func writeFileAtomic(dir, name string, data []byte, durable bool) error {
	return writeFileWith(dir, name, durable, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeFileWith is writeFileAtomic with the content written by write.
func writeFileWith(dir, name string, durable bool, write func(io.Writer) error) error {
	_, err := writeFile(dir, name, durable, false, write)
	return err
}

// writeFile is writeFileWith; with keep it returns the file still open for
// reading and writing, which after the rename is dir/name, so that the caller
// reads back what it wrote from the file it wrote, whatever the path says
// later. Without keep the file is closed before the rename, as systems that
// cannot rename an open file want.
func writeFile(dir, name string, durable, keep bool, write func(io.Writer) error) (*os.File, error) {
	tmp := filepath.Join(dir, name+tmpSuffix)
	flag := os.O_WRONLY
	if keep {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(tmp, flag|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	err = write(f)
	if err == nil && durable {
		err = f.Sync()
	}
	if !keep || err != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		f = nil
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
	} else if durable {
		err = syncDir(dir)
	}
	if err != nil && f != nil {
		_ = f.Close()
		f = nil
	}
	return f, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// The position file holds the queue offset up to which everything is
// committed: magic, offset, CRC-32C of both.
func encodePosition(pos int64) []byte {
	b := make([]byte, 0, len(positionMagic)+12)
	b = append(b, positionMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(pos))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errBadFile = errors.New("bad magic, size or checksum")

func decodePosition(b []byte) (int64, error) {
	n := len(positionMagic)
	if len(b) != n+12 || string(b[:n]) != positionMagic ||
		crc32.Checksum(b[:n+8], castagnoli) != binary.LittleEndian.Uint32(b[n+8:]) {
		return 0, errBadFile
	}
	pos := int64(binary.LittleEndian.Uint64(b[n:]))
	if pos < 0 {
		return 0, errBadFile
	}
	return pos, nil
}

// savedState is the latest state of one key and the queue offset of the
// record that carried it; a higher offset is newer. The queue holds no copy
// of a state: it is megabytes for a large page, and is needed only when asked
// for (LoadState) and to write the state file, when a segment holding states
// goes. While the record's segment is there, seg is it and at the record's
// offset in it. Once the segment is gone, seg is nil and the state is the n
// bytes at at in the state file the queue holds open (Queue.stateFile).
type savedState struct {
	off int64
	seg *segment
	at  int64
	n   int // the state's length
}

// The state file holds the states whose records may already be deleted:
// magic, count, then per key offset, key length, value length, key, value;
// CRC-32C of everything before it. Queue.persistStates writes it.

// verifyStateFile verifies the checksum of the state file f, reading it
// through buf a piece at a time: a state file is megabytes.
func verifyStateFile(f *os.File, buf []byte) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	end := fi.Size() - 4
	if end < int64(len(stateMagic)+4) {
		return errBadFile
	}
	var sum uint32
	for off := int64(0); off < end; {
		p := buf[:min(end-off, int64(len(buf)))]
		if _, err := f.ReadAt(p, off); err != nil {
			return err
		}
		sum = crc32.Update(sum, castagnoli, p)
		off += int64(len(p))
	}
	var t [4]byte
	if _, err := f.ReadAt(t[:], end); err != nil {
		return err
	}
	if sum != binary.LittleEndian.Uint32(t[:]) {
		return errBadFile
	}
	return nil
}

// indexStates reads where each key's state is in the state file f, whose
// checksum verifyStateFile has verified, leaving the values in the file.
func indexStates(f *os.File) (map[string]savedState, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n, end := int64(len(stateMagic)), fi.Size()-4
	var h [14]byte
	if end < n+4 {
		return nil, errBadFile
	}
	if _, err := f.ReadAt(h[:n+4], 0); err != nil {
		return nil, err
	}
	if string(h[:n]) != stateMagic {
		return nil, errBadFile
	}
	count := int(binary.LittleEndian.Uint32(h[n:]))
	p, states := n+4, map[string]savedState{}
	var key []byte
	for range count {
		if end-p < int64(len(h)) {
			return nil, errBadFile
		}
		if _, err := f.ReadAt(h[:], p); err != nil {
			return nil, err
		}
		off := int64(binary.LittleEndian.Uint64(h[:]))
		kl, vl := int64(binary.LittleEndian.Uint16(h[8:])), int64(binary.LittleEndian.Uint32(h[10:]))
		p += int64(len(h))
		if off < 0 || kl > end-p || vl > end-p-kl {
			return nil, errBadFile
		}
		key = slices.Grow(key[:0], int(kl))[:kl]
		if _, err := f.ReadAt(key, p); err != nil {
			return nil, err
		}
		states[string(key)] = savedState{off: off, at: p + kl, n: int(vl)}
		p += kl + vl
	}
	if p != end {
		return nil, errBadFile
	}
	return states, nil
}
