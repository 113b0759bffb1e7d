package diskqueue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// A segment file is a run of records, each a fixed header and a payload:
//
//	off size field
//	 0   1   kind: 1 = record, 2 = padding written over a repaired hole
//	 1   1   flags: 1 = continued, more records of the same append follow
//	 2   2   zero
//	 4   4   data length: line-protocol bytes (uint32, little endian)
//	 8   4   lines in data (uint32)
//	12   2   key length (uint16)
//	14   2   zero
//	16   4   state length (uint32)
//	20   8   appended, Unix nanoseconds (int64)
//	28   4   CRC-32C of bytes 0..27 and of the payload (padding: of the header only)
//
// The payload is data, then key, then state. A record with a key carries the
// collector state saved with its data; a record with a key and no data is a
// state alone. The line count lives in the header so that draining never looks
// at lines.
//
// One append can be split into several records (a group), contiguous in one
// segment and sharing their append time, written in one write or one
// AppendGroup at a time: all but the last are flagged continued, and only
// the last carries the state. A group whose last record is missing at the
// end of the newest segment was cut short by a crash and is dropped whole,
// so the state and all of its data survive together or not at all.
const (
	headerSize    = 32
	kindRecord    = 1
	kindPad       = 2
	flagContinued = 1
	// maxPayload bounds what a header may claim, so a corrupt length cannot
	// make the reader allocate or skip gigabytes.
	maxPayload = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errShort: the bytes end before the record the header announces.
	errShort = errors.New("record extends past the end of the file")
	// errHeader: the header is not one this package writes.
	errHeader = errors.New("malformed record header")
	// errChecksum: the header is plausible and complete but the checksum fails.
	errChecksum = errors.New("record checksum mismatch")
)

// record is a decoded record; its slices point into the decoded buffer.
type record struct {
	kind     byte
	flags    byte
	data     []byte
	lines    int
	key      []byte
	state    []byte
	appended int64
	size     int // header and payload
}

type header struct {
	kind     byte
	flags    byte
	dataLen  int
	lines    int
	keyLen   int
	stateLen int
	appended int64
	sum      uint32
}

func (h header) payloadLen() int { return h.dataLen + h.keyLen + h.stateLen }

// parseHeader checks everything a header says about itself; it does not look
// at the payload.
func parseHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, errShort
	}
	h := header{
		kind:     b[0],
		flags:    b[1],
		dataLen:  int(binary.LittleEndian.Uint32(b[4:])),
		lines:    int(binary.LittleEndian.Uint32(b[8:])),
		keyLen:   int(binary.LittleEndian.Uint16(b[12:])),
		stateLen: int(binary.LittleEndian.Uint32(b[16:])),
		appended: int64(binary.LittleEndian.Uint64(b[20:])),
		sum:      binary.LittleEndian.Uint32(b[28:]),
	}
	if b[2] != 0 || b[3] != 0 || b[14] != 0 || b[15] != 0 || h.flags&^flagContinued != 0 {
		return header{}, errHeader
	}
	if h.dataLen > maxPayload || h.stateLen > maxPayload || h.payloadLen() > maxPayload {
		return header{}, errHeader
	}
	switch h.kind {
	case kindRecord:
		// Data and lines come together, a line is at least its newline, and a
		// record carries data, a state, or both.
		if (h.dataLen == 0) != (h.lines == 0) || h.lines > h.dataLen {
			return header{}, errHeader
		}
		if h.keyLen == 0 && (h.stateLen != 0 || h.dataLen == 0) {
			return header{}, errHeader
		}
		// A group's state rides on its last record.
		if h.flags&flagContinued != 0 && (h.keyLen != 0 || h.dataLen == 0) {
			return header{}, errHeader
		}
	case kindPad:
		if h.flags != 0 || h.lines != 0 || h.keyLen != 0 || h.stateLen != 0 || h.appended != 0 {
			return header{}, errHeader
		}
	default:
		return header{}, errHeader
	}
	return h, nil
}

// decodeRecord reads the record at the start of b. It trusts nothing: sizes
// are checked against b before they are used and the checksum is verified.
func decodeRecord(b []byte) (record, error) {
	h, err := parseHeader(b)
	if err != nil {
		return record{}, err
	}
	size := headerSize + h.payloadLen()
	if size > len(b) {
		return record{}, errShort
	}
	sum := crc32.Update(0, castagnoli, b[:28])
	if h.kind == kindRecord {
		sum = crc32.Update(sum, castagnoli, b[headerSize:size])
	}
	if sum != h.sum {
		return record{}, errChecksum
	}
	p := b[headerSize:size]
	return record{
		kind:     h.kind,
		flags:    h.flags,
		data:     p[:h.dataLen:h.dataLen],
		lines:    h.lines,
		key:      p[h.dataLen : h.dataLen+h.keyLen : h.dataLen+h.keyLen],
		state:    p[h.dataLen+h.keyLen:],
		appended: h.appended,
		size:     size,
	}, nil
}

// recordHeader returns the header of a record of that payload, checksum
// included, so that a record can be written without copying its payload.
// The caller has validated the sizes.
func recordHeader(flags byte, data []byte, lines int, key string, state []byte, appended int64) [headerSize]byte {
	h := headerFields(flags, len(data), lines, len(key), len(state), appended)
	sum := crc32.Update(0, castagnoli, h[:28])
	sum = crc32.Update(sum, castagnoli, data)
	sum = crc32.Update(sum, castagnoli, []byte(key))
	sum = crc32.Update(sum, castagnoli, state)
	binary.LittleEndian.PutUint32(h[28:], sum)
	return h
}

// headerFields is a record's header without its checksum.
func headerFields(flags byte, dataLen, lines, keyLen, stateLen int, appended int64) [headerSize]byte {
	var h [headerSize]byte
	h[0] = kindRecord
	h[1] = flags
	binary.LittleEndian.PutUint32(h[4:], uint32(dataLen))
	binary.LittleEndian.PutUint32(h[8:], uint32(lines))
	binary.LittleEndian.PutUint16(h[12:], uint16(keyLen))
	binary.LittleEndian.PutUint32(h[16:], uint32(stateLen))
	binary.LittleEndian.PutUint64(h[20:], uint64(appended))
	return h
}

// appendRecord encodes a record onto dst. The caller has validated the sizes.
func appendRecord(dst []byte, flags byte, data []byte, lines int, key string, state []byte, appended int64) []byte {
	h := recordHeader(flags, data, lines, key, state, appended)
	dst = append(dst, h[:]...)
	dst = append(dst, data...)
	dst = append(dst, key...)
	return append(dst, state...)
}

// padRecord returns a padding record covering exactly n bytes (n >= headerSize),
// its payload zeroed so that the lost bytes are gone for good.
func padRecord(n int) []byte {
	b := make([]byte, n)
	b[0] = kindPad
	binary.LittleEndian.PutUint32(b[4:], uint32(n-headerSize))
	binary.LittleEndian.PutUint32(b[28:], crc32.Update(0, castagnoli, b[:28]))
	return b
}

// resync finds the first offset at or after from where a valid record starts,
// or -1. It is the slow path of a corrupt segment only.
func resync(b []byte, from int) int {
	for p := max(from, 0); p+headerSize <= len(b); p++ {
		if (b[p] != kindRecord && b[p] != kindPad) || b[p+2] != 0 || b[p+3] != 0 {
			continue
		}
		if _, err := decodeRecord(b[p:]); err == nil {
			return p
		}
	}
	return -1
}

// lostLines estimates the lines in a region that failed to decode. When the
// lengths in its first header account for the region exactly, the damage is
// elsewhere and the header's line count is believed; when the header is sane
// and fits, its count and the newlines after the record; otherwise the
// newlines after the first header's worth of bytes.
func lostLines(region []byte) int {
	if len(region) < headerSize {
		return bytes.Count(region, []byte{'\n'})
	}
	dataLen := int64(binary.LittleEndian.Uint32(region[4:]))
	payload := dataLen + int64(binary.LittleEndian.Uint16(region[12:])) + int64(binary.LittleEndian.Uint32(region[16:]))
	if headerSize+payload == int64(len(region)) {
		if region[0] == kindPad {
			return 0
		}
		return int(min(int64(binary.LittleEndian.Uint32(region[8:])), dataLen))
	}
	if h, err := parseHeader(region); err == nil && h.kind == kindRecord && headerSize+h.payloadLen() <= len(region) {
		return h.lines + bytes.Count(region[headerSize+h.payloadLen():], []byte{'\n'})
	}
	return bytes.Count(region[headerSize:], []byte{'\n'})
}
