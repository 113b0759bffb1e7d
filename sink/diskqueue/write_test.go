package diskqueue

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// An append is written piece by piece from the caller's memory (writeGroup);
// the file must hold exactly what appendRecord lays out, for groups smaller
// and larger than the write buffer, with and without a state.
func TestWriteGroupLaysOutRecordsLikeAppendRecord(t *testing.T) {
	big := bytes.Repeat([]byte{'s'}, 3*writeBuffer+17) // a state over the buffer size
	tests := []struct {
		name     string
		lines    int
		maxLines int
		key      string
		state    []byte
	}{
		{"one small record", 3, 1000, "", nil},
		{"one record with its state", 3, 1000, "target", []byte("state")},
		{"a group over the buffer, state on the last", 9000, 1000, "target", big},
		{"a group over the buffer, no state", 9000, 700, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q, err := Open(dir, Options{MaxBytes: 64 << 20, RecordMaxLines: tt.maxLines, RecordMaxBytes: 1 << 20}, testLog(t))
			require.NoError(t, err)
			data := lines(1, tt.lines)
			require.Greater(t, len(data), 0)
			if tt.key != "" {
				require.NoError(t, q.AppendWithState(data, tt.lines, tt.key, tt.state))
			} else {
				require.NoError(t, q.Append(data, tt.lines))
			}
			require.NoError(t, q.Close())

			segs := segFiles(t, dir)
			require.Len(t, segs, 1)
			file, err := os.ReadFile(segs[0])
			require.NoError(t, err)

			var want, gotData []byte
			recs := 0
			for rest := file; len(rest) > 0; recs++ {
				rec, err := decodeRecord(rest)
				require.NoError(t, err, "record %d", recs)
				rest = rest[rec.size:]
				last := len(rest) == 0
				if last {
					require.Zero(t, rec.flags, "the last record of a group is not continued")
					require.Equal(t, tt.key, string(rec.key))
					require.Equal(t, len(tt.state), len(rec.state))
					require.True(t, bytes.Equal(tt.state, rec.state))
				} else {
					require.Equal(t, byte(flagContinued), rec.flags, "record %d", recs)
					require.Empty(t, rec.key)
				}
				gotData = append(gotData, rec.data...)
				want = appendRecord(want, rec.flags, rec.data, rec.lines, string(rec.key), rec.state, rec.appended)
			}
			require.Equal(t, (tt.lines+tt.maxLines-1)/tt.maxLines, recs, "records in the group")
			require.True(t, bytes.Equal(data, gotData), "the lines, in order")
			require.True(t, bytes.Equal(want, file), "the bytes appendRecord lays out")
		})
	}
}
