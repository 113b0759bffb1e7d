package diskqueue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// recLoc is where a record sits on disk, found by decoding the files.
type recLoc struct {
	path      string
	off, size int
	id        int // from the record's lines; -1 for a state alone or padding
	line      int // index of its first line
	kind      byte
	flags     byte
	key       string
	state     string
}

func scanDir(t tb, dir string) []recLoc {
	t.Helper()
	var out []recLoc
	for _, p := range segFiles(t, dir) {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		for off := 0; off < len(data); {
			rec, err := decodeRecord(data[off:])
			if err != nil {
				break
			}
			l := recLoc{path: p, off: off, size: rec.size, id: -1, kind: rec.kind, flags: rec.flags, key: string(rec.key), state: string(rec.state)}
			if rec.kind == kindRecord && len(rec.data) > 0 {
				_, err := fmt.Sscanf(string(rec.data), "m,rec=%d line=%di", &l.id, &l.line)
				require.NoError(t, err)
			}
			out = append(out, l)
			off += rec.size
		}
	}
	return out
}

// ids lists the records in line-protocol data, in order.
func ids(t tb, data []byte) []int {
	t.Helper()
	var out []int
	for l := range bytes.Lines(data) {
		var id int
		_, err := fmt.Sscanf(string(l), "m,rec=%d ", &id)
		require.NoError(t, err)
		if len(out) == 0 || out[len(out)-1] != id {
			out = append(out, id)
		}
	}
	return out
}

func flipByte(t tb, path string, off int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	b := make([]byte, 1)
	_, err = f.ReadAt(b, int64(off))
	require.NoError(t, err)
	b[0] ^= 0x40
	_, err = f.WriteAt(b, int64(off))
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func appendFile(t tb, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(t, err)
	_, err = f.Write(b)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestOpenRepairs(t *testing.T) {
	const perRec = 2
	all := []int{0, 1, 2, 3, 4}
	tests := []struct {
		name        string
		segSize     int64
		commit      int // records committed before the damage
		mutate      func(t *testing.T, dir string, recs []recLoc)
		wantIDs     []int
		wantCorrupt int64 // -1: some
		wantAside   bool
	}{
		{
			name:    "clean",
			mutate:  func(*testing.T, string, []recLoc) {},
			wantIDs: all,
		},
		{
			name: "junk files in the directory",
			mutate: func(t *testing.T, dir string, _ []recLoc) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "zz.seg"), []byte("junk"), 0o644))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "0000000000000000.seg.bak"), []byte("junk"), 0o644))
				require.NoError(t, os.Mkdir(filepath.Join(dir, segName(1<<40)), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "position.tmp"), []byte("half"), 0o644))
			},
			wantIDs: all,
		},
		{
			name: "empty segment file after the last",
			mutate: func(t *testing.T, dir string, _ []recLoc) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, segName(1<<20)), nil, 0o644))
			},
			wantIDs: all,
		},
		{
			name: "zero-length record at the end",
			mutate: func(t *testing.T, dir string, recs []recLoc) {
				// A header that claims neither data nor state is not one we write.
				h := padRecord(headerSize)
				h[0] = kindRecord
				appendFile(t, recs[len(recs)-1].path, h)
			},
			wantIDs: all,
		},
		{
			name: "torn header",
			mutate: func(t *testing.T, dir string, recs []recLoc) {
				appendFile(t, recs[len(recs)-1].path, appendRecord(nil, 0, lines(9, 1), 1, "", nil, 1)[:10])
			},
			wantIDs: all,
		},
		{
			name: "torn payload",
			mutate: func(t *testing.T, dir string, recs []recLoc) {
				r := appendRecord(nil, 0, lines(9, 3), 3, "", nil, 1)
				appendFile(t, recs[len(recs)-1].path, r[:len(r)-5])
			},
			wantIDs: all,
		},
		{
			name: "header claims more than the file holds",
			mutate: func(t *testing.T, dir string, recs []recLoc) {
				r := appendRecord(nil, 0, lines(9, 1), 1, "", nil, 1)
				r[7] = 0x30 // data length ~800MB
				appendFile(t, recs[len(recs)-1].path, r)
			},
			wantIDs: all,
		},
		{
			name: "bad checksum mid-segment",
			mutate: func(t *testing.T, _ string, recs []recLoc) {
				flipByte(t, recs[2].path, recs[2].off+headerSize+3)
			},
			wantIDs:     []int{0, 1, 3, 4},
			wantCorrupt: perRec,
			wantAside:   true,
		},
		{
			name: "bad header mid-segment",
			mutate: func(t *testing.T, _ string, recs []recLoc) {
				flipByte(t, recs[1].path, recs[1].off+1)
			},
			wantIDs:     []int{0, 2, 3, 4},
			wantCorrupt: perRec,
			wantAside:   true,
		},
		{
			name: "bad checksum in the newest record",
			mutate: func(t *testing.T, _ string, recs []recLoc) {
				last := recs[len(recs)-1]
				flipByte(t, last.path, last.off+last.size-1)
			},
			wantIDs:     []int{0, 1, 2, 3},
			wantCorrupt: perRec,
			wantAside:   true,
		},
		{
			name:    "bad checksum at the end of an older segment",
			segSize: 100,
			mutate: func(t *testing.T, _ string, recs []recLoc) {
				require.NotEqual(t, recs[0].path, recs[1].path, "one record per segment")
				flipByte(t, recs[0].path, recs[0].off+headerSize)
			},
			wantIDs:     []int{1, 2, 3, 4},
			wantCorrupt: perRec,
			wantAside:   true,
		},
		{
			name:   "damage in committed records only",
			commit: 2,
			mutate: func(t *testing.T, _ string, recs []recLoc) {
				flipByte(t, recs[0].path, recs[0].off+headerSize)
			},
			wantIDs:   []int{2, 3, 4},
			wantAside: true,
		},
		{
			name:    "missing segment",
			segSize: 100,
			mutate: func(t *testing.T, _ string, recs []recLoc) {
				require.NoError(t, os.Remove(recs[2].path))
			},
			wantIDs: []int{0, 1, 3, 4},
		},
		{
			name:    "overlapping segment",
			segSize: 100,
			mutate: func(t *testing.T, dir string, recs []recLoc) {
				data, err := os.ReadFile(recs[0].path)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dir, segName(8)), data, 0o644))
			},
			wantIDs:     all,
			wantCorrupt: -1,
			wantAside:   true,
		},
		{
			name:    "garbage segment in the middle",
			segSize: 100,
			mutate: func(t *testing.T, _ string, recs []recLoc) {
				require.NoError(t, os.WriteFile(recs[2].path, bytes.Repeat([]byte("garbage\n"), 20), 0o644))
			},
			wantIDs:     []int{0, 1, 3, 4},
			wantCorrupt: -1,
			wantAside:   true,
		},
		{
			name:   "corrupt position file",
			commit: 2,
			mutate: func(t *testing.T, dir string, _ []recLoc) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, positionName), []byte("garbage"), 0o644))
			},
			wantIDs: all, // sent again: at least once
		},
		{
			name:   "missing position file",
			commit: 3,
			mutate: func(t *testing.T, dir string, _ []recLoc) {
				require.NoError(t, os.Remove(filepath.Join(dir, positionName)))
			},
			wantIDs: all,
		},
		{
			name: "corrupt state file",
			mutate: func(t *testing.T, dir string, _ []recLoc) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, stateName), []byte("garbage"), 0o644))
			},
			wantIDs: all,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{MaxBytes: 1 << 20, SegmentSize: tt.segSize}
			q, err := Open(dir, opts, testLog(t))
			require.NoError(t, err)
			for _, id := range all {
				require.NoError(t, q.Append(lines(id, perRec), perRec))
			}
			for range tt.commit {
				b, err := q.Next(context.Background(), perRec, 1<<20)
				require.NoError(t, err)
				require.NoError(t, q.Commit(b))
			}
			require.NoError(t, q.Close())
			tt.mutate(t, dir, scanDir(t, dir))

			q, err = Open(dir, opts, testLog(t))
			require.NoError(t, err, "the queue always opens")
			corrupt := q.Stats().DroppedLines[ReasonCorrupt]
			if tt.wantCorrupt < 0 {
				require.Positive(t, corrupt)
			} else {
				require.Equal(t, tt.wantCorrupt, corrupt)
			}
			aside, err := filepath.Glob(filepath.Join(dir, "*"+corruptMark+"*"))
			require.NoError(t, err)
			require.Equal(t, tt.wantAside, len(aside) > 0, "copies aside: %v", aside)
			require.NoError(t, q.Close())

			// The repair is done once: a second open finds nothing to count,
			// and the queue still works.
			q, err = Open(dir, opts, testLog(t))
			require.NoError(t, err)
			require.Zero(t, q.Stats().DroppedLines[ReasonCorrupt])
			require.NoError(t, q.Append(lines(5, perRec), perRec))
			got, _ := drain(t, q, 1000, 1<<20)
			require.Equal(t, append(slices.Clone(tt.wantIDs), 5), ids(t, got))
			require.NoError(t, q.Close())
		})
	}
}

func TestOpenUnusableDirectory(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string
		want  string
	}{
		{
			// Root ignores permission bits, so make the path impossible instead.
			name: "path under a regular file",
			setup: func(t *testing.T) string {
				f := filepath.Join(t.TempDir(), "file")
				require.NoError(t, os.WriteFile(f, nil, 0o644))
				return filepath.Join(f, "queue")
			},
			want: "not a directory",
		},
		{
			name: "path is a regular file",
			setup: func(t *testing.T) string {
				f := filepath.Join(t.TempDir(), "file")
				require.NoError(t, os.WriteFile(f, nil, 0o644))
				return f
			},
			want: "cannot create directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.setup(t), Options{MaxBytes: 1 << 20}, testLog(t))
			require.ErrorContains(t, err, tt.want)
		})
	}
}
