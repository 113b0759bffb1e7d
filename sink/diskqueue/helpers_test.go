package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/sink"
)

// testLog sends the queue's messages to the test log, so a failing test
// shows what the queue said.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// lines returns n distinct lines tagged with id.
func lines(id, n int) []byte { return linesFrom(id, 0, n) }

// linesFrom returns lines first to first+n-1 of what lines(id, ...) makes.
func linesFrom(id, first, n int) []byte {
	var b strings.Builder
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "m,rec=%d line=%di 1700000000\n", id, i)
	}
	return []byte(b.String())
}

// crash abandons the queue as kill -9 would: no sync, no position, no state.
func (q *Queue) crash() {
	q.mu.Lock()
	q.closed = true
	q.wakeNext()
	q.mu.Unlock()
	if q.stop != nil {
		close(q.stop)
		q.wg.Wait()
	}
	_ = q.closeFiles()
}

// drain takes everything waiting, committing batch by batch.
func drain(t tb, q *Queue, maxLines, maxBytes int) ([]byte, int) {
	t.Helper()
	var all []byte
	n := 0
	for q.Stats().Records > 0 {
		b, err := q.Next(context.Background(), maxLines, maxBytes)
		require.NoError(t, err)
		all = append(all, b.Data...)
		n += b.Lines
		require.NoError(t, q.Commit(b))
	}
	return all, n
}

func segFiles(t tb, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	require.NoError(t, err)
	return m
}

func fileSize(t tb, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

var _ sink.Queue = (*Queue)(nil)

// tb is what helpers need from *testing.T and *rapid.T alike.
type tb interface {
	require.TestingT
	Helper()
}

// debugLog shows the queue's messages in property tests when DISKQUEUE_DEBUG
// is set; they are too many to show always.
func debugLog() *slog.Logger {
	if os.Getenv("DISKQUEUE_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// stateFileValues reads the state file in dir, which must be sound, into key
// -> state; nil if there is none.
func stateFileValues(t tb, dir string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, stateName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, verifyStateFile(f, make([]byte, 100)))
	idx, err := indexStates(f)
	require.NoError(t, err)
	out := make(map[string]string, len(idx))
	for k, st := range idx {
		b := make([]byte, st.n)
		_, err := f.ReadAt(b, st.at)
		require.NoError(t, err)
		out[k] = string(b)
	}
	return out
}
