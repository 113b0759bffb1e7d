package diskqueue

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

const kill9Env = "DISKQUEUE_KILL9_DIR"

// TestKill9 runs a real process that appends (fsync "always") from two
// goroutines and sends at the same time, reporting every acknowledged append
// and every commit, and kills it with SIGKILL. The reopened queue must hold
// every acknowledged record that was not committed, in order, nothing else,
// and each writer's state must be the one saved with its newest surviving
// record.
func TestKill9(t *testing.T) {
	if dir := os.Getenv(kill9Env); dir != "" {
		kill9Child(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), kill9Env+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	acked := map[[2]int]bool{}
	sent := map[[2]int]bool{}
	read := func(line string) {
		require.False(t, strings.HasPrefix(line, "E "), "child: %s", line)
		f := strings.Fields(line)
		for _, id := range f[1:] {
			var w, i int
			_, err := fmt.Sscanf(id, "%d/%d", &w, &i)
			require.NoError(t, err, line)
			if f[0] == "A" {
				acked[[2]int{w, i}] = true
			} else {
				sent[[2]int{w, i}] = true
			}
		}
	}
	sc := bufio.NewScanner(out)
	for len(acked) < 400 && sc.Scan() {
		read(sc.Text())
	}
	require.NoError(t, cmd.Process.Kill())
	for sc.Scan() { // what was written to the pipe before the kill
		read(sc.Text())
	}
	_ = cmd.Wait()
	require.GreaterOrEqual(t, len(acked), 400, "the child stopped early")

	q, err := Open(dir, Options{MaxBytes: 64 << 20, SegmentSize: 64 << 10}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	queued := map[[2]int]bool{}
	last := map[int]int{0: -1, 1: -1}
	data, _ := drain(t, q, 1000, 1<<20)
	for _, l := range splitLines(data) {
		var w, i int
		_, err := fmt.Sscanf(l, "k9,w=%d i=%di", &w, &i)
		require.NoError(t, err, l)
		require.Greater(t, i, last[w], "writer %d out of order or repeated", w)
		last[w] = i
		queued[[2]int{w, i}] = true
	}
	for id := range acked {
		require.True(t, sent[id] || queued[id], "acknowledged record %v lost", id)
	}
	newest := map[int]int{0: -1, 1: -1}
	for id := range queued {
		newest[id[0]] = max(newest[id[0]], id[1])
	}
	for id := range sent {
		newest[id[0]] = max(newest[id[0]], id[1])
	}
	for w := range 2 {
		b, err := q.LoadState(strconv.Itoa(w))
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(newest[w]), string(b), "state of writer %d", w)
	}
	t.Logf("acknowledged %d, committed %d, queued after the kill %d", len(acked), len(sent), len(queued))
}

func kill9Child(dir string) {
	q, err := Open(dir, Options{MaxBytes: 64 << 20, SegmentSize: 64 << 10}, nil)
	if err != nil {
		fmt.Println("E", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	say := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = os.Stdout.WriteString(s + "\n")
	}
	for w := range 2 {
		go func() {
			for i := 0; ; i++ {
				line := fmt.Sprintf("k9,w=%d i=%di 1\n", w, i)
				if err := q.AppendWithState([]byte(line), 1, strconv.Itoa(w), []byte(strconv.Itoa(i))); err != nil {
					say("E " + err.Error())
					return
				}
				say(fmt.Sprintf("A %d/%d", w, i))
			}
		}()
	}
	for {
		b, err := q.Next(context.Background(), 7, 1<<20)
		if err != nil {
			say("E " + err.Error())
			return
		}
		var ids []string
		for _, l := range splitLines(b.Data) {
			var w, i int
			_, _ = fmt.Sscanf(l, "k9,w=%d i=%di", &w, &i)
			ids = append(ids, fmt.Sprintf("%d/%d", w, i))
		}
		// Announced before Commit, so that a kill between the two cannot
		// hide a committed record from the parent.
		say("C " + strings.Join(ids, " "))
		if err := q.Commit(b); err != nil {
			say("E " + err.Error())
			return
		}
	}
}
