package diskqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
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
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if durable {
		return syncDir(dir)
	}
	return nil
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
// record that carried it; a higher offset is newer. While that record's
// segment is there, seg and at (the record's offset in it) say where to read
// the state back, and val is nil: a state is megabytes for a large page, and
// the queue needs it only to write the state file, when a segment holding
// states goes. Once the segment is gone, val holds it.
type savedState struct {
	off int64
	val []byte
	seg *segment
	at  int64
}

// The state file holds the states whose records may already be deleted:
// magic, count, then per key offset, key length, value length, key, value;
// CRC-32C of everything before it. Queue.persistStates writes it.
func decodeStates(b []byte) (map[string]savedState, error) {
	n := len(stateMagic)
	if len(b) < n+8 || string(b[:n]) != stateMagic ||
		crc32.Checksum(b[:len(b)-4], castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errBadFile
	}
	count := int(binary.LittleEndian.Uint32(b[n:]))
	p, end := b[n+4:len(b)-4], map[string]savedState{}
	for range count {
		if len(p) < 14 {
			return nil, errBadFile
		}
		off := int64(binary.LittleEndian.Uint64(p))
		kl, vl := int(binary.LittleEndian.Uint16(p[8:])), int(binary.LittleEndian.Uint32(p[10:]))
		p = p[14:]
		if off < 0 || kl > len(p) || vl > len(p)-kl {
			return nil, errBadFile
		}
		end[string(p[:kl])] = savedState{off: off, val: append([]byte{}, p[kl:kl+vl]...)}
		p = p[kl+vl:]
	}
	if len(p) != 0 {
		return nil, errBadFile
	}
	return end, nil
}
