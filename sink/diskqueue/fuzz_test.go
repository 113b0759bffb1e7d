package diskqueue

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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

// FuzzOpen puts arbitrary bytes in a segment, after a valid one, and opens
// the directory: it must open, deliver only whole checksummed records, and
// have repaired everything the first time, so that a second open finds no
// damage left.
func FuzzOpen(f *testing.F) {
	rec := appendRecord(nil, 0, []byte("m v=1 1\n"), 1, "k", []byte("s"), 1)
	f.Add(rec, false)
	f.Add(append(append([]byte{}, rec...), rec[:40]...), true)
	f.Add(append(padRecord(40), rec...), false)
	f.Add(append(appendRecord(nil, flagContinued, []byte("m v=1 1\n"), 1, "", nil, 7), rec...), true)
	f.Fuzz(func(t *testing.T, seg []byte, last bool) {
		dir := t.TempDir()
		first := appendRecord(nil, 0, []byte("first v=1 1\n"), 1, "", nil, 1)
		start := int64(0)
		if !last {
			// The fuzzed segment is followed by another one.
			name := filepath.Join(dir, segName(1<<20))
			if err := os.WriteFile(name, first, 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			start = int64(len(first))
			if err := os.WriteFile(filepath.Join(dir, segName(0)), first, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, segName(start)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := Options{MaxBytes: 1 << 30}
		q, err := Open(dir, opts, nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		st := q.Stats()
		// A state found on open reads back from its record, twice alike.
		state, err := q.LoadState("k")
		if err != nil {
			t.Fatalf("load state: %v", err)
		}
		if st.Records > 0 {
			// Not committed: the second open must find the same records.
			b, err := q.Next(context.Background(), 1<<30, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Data) == 0 || b.Data[len(b.Data)-1] != '\n' || b.Lines > len(b.Data) || int64(b.Lines) != st.Lines {
				t.Fatalf("batch of %d lines (%d waiting) in %q", b.Lines, st.Lines, b.Data)
			}
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q, err = Open(dir, opts, nil)
		if err != nil {
			t.Fatalf("second open: %v", err)
		}
		defer q.Close()
		again := q.Stats()
		if again.DroppedLines[ReasonCorrupt] != 0 {
			t.Fatalf("damage counted twice: %d lines", again.DroppedLines[ReasonCorrupt])
		}
		if again.Records != st.Records || again.Lines != st.Lines || again.Bytes != st.Bytes {
			t.Fatalf("first open: %+v, second: %+v", st, again)
		}
		if b, err := q.LoadState("k"); err != nil || !bytes.Equal(b, state) {
			t.Fatalf("state %q, then %q (%v)", state, b, err)
		}
	})
}
