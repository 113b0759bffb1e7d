package diskqueue

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord feeds arbitrary bytes, as a damaged disk could hold, to
// the decoder and to the repair helpers. They must not panic nor read past
// the input, and whatever decodes must be exactly what the encoder writes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, 0, []byte("m v=1 1\n"), 1, "", nil, 1))
	f.Add(appendRecord(nil, 0, []byte("m v=1 1\nm v=2 2\n"), 2, "target", []byte("state"), 1700000000000000000))
	f.Add(appendRecord(nil, 0, nil, 0, "k", nil, 0))
	f.Add(padRecord(headerSize + 10))
	f.Add(appendRecord(nil, flagContinued, []byte("m v=1 1\n"), 1, "", nil, 1))
	f.Add(appendRecord(nil, 0, []byte("m v=1 1\n"), 1, "", nil, 1)[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err == nil {
			if rec.size < headerSize || rec.size > len(b) {
				t.Fatalf("size %d outside the input of %d bytes", rec.size, len(b))
			}
			switch rec.kind {
			case kindRecord:
				again := appendRecord(nil, rec.flags, rec.data, rec.lines, string(rec.key), rec.state, rec.appended)
				if !bytes.Equal(again, b[:rec.size]) {
					t.Fatalf("decoded record encodes differently:\n%x\n%x", again, b[:rec.size])
				}
				if len(rec.data) > 0 && rec.lines == 0 || rec.lines > len(rec.data) {
					t.Fatalf("%d lines in %d bytes", rec.lines, len(rec.data))
				}
			case kindPad:
				if !bytes.Equal(padRecord(rec.size)[:headerSize], b[:headerSize]) {
					t.Fatalf("padding header differs")
				}
			default:
				t.Fatalf("kind %d decoded", rec.kind)
			}
		}
		if p := resync(b, 0); p >= 0 {
			if _, err := decodeRecord(b[p:]); err != nil {
				t.Fatalf("resync stopped at %d, which does not decode: %v", p, err)
			}
			if err == nil && p != 0 {
				t.Fatalf("resync skipped a valid record at 0")
			}
		}
		if n := lostLines(b); n < 0 {
			t.Fatalf("negative line count %d", n)
		}
	})
}
