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
	"time"

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

const kill9GroupsEnv = "DISKQUEUE_KILL9_GROUPS_DIR"

// groupLines is how many lines each group of TestKill9Groups holds: three
// AppendGroup calls of two and the last one with the state.
const groupLines = 7

// kill9Groups is how many groups the child acknowledges before the kill.
const kill9Groups = 150

// TestKill9Groups is TestKill9 with groups: a real process writes groups
// of records one AppendGroup at a time, another goroutine appends single
// lines meanwhile, a third sends, and it is killed with SIGKILL, most likely
// with a group open. After the restart every acknowledged group is there
// (or was sent) whole, no group is there in part, no line came between the
// lines of a group, and the state is the newest group's.
func TestKill9Groups(t *testing.T) {
	if dir := os.Getenv(kill9GroupsEnv); dir != "" {
		kill9GroupsChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Groups$", "-test.count=1")
	cmd.Env = append(os.Environ(), kill9GroupsEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	acked := map[int]bool{}
	sent := map[[2]int]bool{} // group (-1: a single line) and line
	read := func(line string) {
		require.False(t, strings.HasPrefix(line, "E "), "child: %s", line)
		f := strings.Fields(line)
		for _, id := range f[1:] {
			var g, j int
			_, err := fmt.Sscanf(id, "%d/%d", &g, &j)
			require.NoError(t, err, line)
			if f[0] == "A" {
				acked[g] = true
			} else {
				sent[[2]int{g, j}] = true
			}
		}
	}
	sc := bufio.NewScanner(out)
	// Killed when a group has begun ("B"), with its first records written.
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "B ") {
			read(l)
		} else if len(acked) >= kill9Groups {
			break
		}
	}
	require.NoError(t, cmd.Process.Kill())
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "B ") {
			read(l)
		}
	}
	_ = cmd.Wait()
	require.GreaterOrEqual(t, len(acked), kill9Groups, "the child stopped early")

	// Whether the kill came with a group open: its last record on disk is
	// continued, or torn.
	open := "no"
	if segs := segFiles(t, dir); len(segs) > 0 {
		b, err := os.ReadFile(segs[len(segs)-1])
		require.NoError(t, err)
		var flags byte
		off := 0
		for off < len(b) {
			rec, err := decodeRecord(b[off:])
			if err != nil {
				break
			}
			flags, off = rec.flags, off+rec.size
		}
		if flags&flagContinued != 0 || off < len(b) {
			open = "yes"
		}
	}
	q, err := Open(dir, Options{MaxBytes: 64 << 20, SegmentSize: 64 << 10}, testLog(t))
	require.NoError(t, err)
	defer q.Close()
	require.Zero(t, q.Stats().DroppedLines[ReasonCorrupt])
	data, _ := drain(t, q, 1000, 1<<20)
	have := map[int]map[int]bool{} // group: lines sent or queued
	note := func(g, j int) {
		if have[g] == nil {
			have[g] = map[int]bool{}
		}
		have[g][j] = true
	}
	for id := range sent {
		if id[0] >= 0 {
			note(id[0], id[1])
		}
	}
	prev, run, ended := -1, -1, map[int]bool{}
	for _, l := range splitLines(data) {
		g, j := parseKill9Group(l)
		if g < 0 {
			run = -1
			continue
		}
		require.GreaterOrEqual(t, g, prev, "groups out of order")
		prev = g
		if g != run {
			require.False(t, ended[g], "a line came between the lines of group %d", g)
			if run >= 0 {
				ended[run] = true
			}
			run = g
		}
		note(g, j)
	}
	newest := -1
	for g, ls := range have {
		require.Len(t, ls, groupLines, "group %d is there in part", g)
		newest = max(newest, g)
	}
	for g := range acked {
		require.Contains(t, have, g, "acknowledged group %d lost", g)
	}
	b, err := q.LoadState("g")
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(newest), string(b))
	t.Logf("groups acknowledged %d, there or sent %d", len(acked), len(have))
	require.Equal(t, "yes", open, "the kill did not come with a group open")
}

// parseKill9Group reads a line of the groups child: its group and line,
// or -1 for a single line.
func parseKill9Group(l string) (g, j int) {
	if _, err := fmt.Sscanf(l, "k9g,g=%d j=%di", &g, &j); err == nil {
		return g, j
	}
	_, _ = fmt.Sscanf(l, "k9,w=1 i=%di", &j)
	return -1, j
}

func kill9GroupsChild(dir string) {
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
	fail := func(err error) {
		say("E " + err.Error())
		select {} // the parent kills
	}
	go func() {
		for g := 0; ; g++ {
			if err := q.BeginGroup("g"); err != nil {
				fail(err)
			}
			j := 0
			for range 3 {
				b := fmt.Appendf(nil, "k9g,g=%d j=%di 1\nk9g,g=%d j=%di 1\n", g, j, g, j+1)
				j += 2
				if err := q.AppendGroup("g", b, 2); err != nil {
					fail(err)
				}
				// The page being converted. The kill comes after "B" of a
				// group past kill9Groups; the long pause is there so that
				// a loaded machine still kills with the group open.
				pause := time.Millisecond
				if j == 2 {
					say(fmt.Sprintf("B %d", g))
					if g >= kill9Groups {
						pause = time.Second
					}
				}
				time.Sleep(pause)
			}
			b := fmt.Appendf(nil, "k9g,g=%d j=%di 1\n", g, j)
			if err := q.CommitGroup("g", b, 1, []byte(strconv.Itoa(g))); err != nil {
				fail(err)
			}
			say(fmt.Sprintf("A %d/0", g))
		}
	}()
	go func() {
		for i := 0; ; i++ {
			if err := q.Append(fmt.Appendf(nil, "k9,w=1 i=%di 1\n", i), 1); err != nil {
				fail(err)
			}
		}
	}()
	for {
		b, err := q.Next(context.Background(), 5, 1<<20)
		if err != nil {
			fail(err)
		}
		var ids []string
		for _, l := range splitLines(b.Data) {
			g, j := parseKill9Group(l)
			ids = append(ids, fmt.Sprintf("%d/%d", g, j))
		}
		say("C " + strings.Join(ids, " "))
		if err := q.Commit(b); err != nil {
			fail(err)
		}
	}
}
