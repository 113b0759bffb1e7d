package childproc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startShell starts script under /bin/sh; the script prints the pid of the
// child it forks on its first line, which startShell waits for and returns.
func startShell(t *testing.T, script string) (p *Process, grandchild int, logFile string) {
	t.Helper()
	logFile = filepath.Join(t.TempDir(), "child.log")
	p, err := Start(exec.Command("/bin/sh", "-c", script), logFile)
	require.NoError(t, err)
	t.Cleanup(func() { p.Stop(0) })
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(logFile)
		line, _, ok := strings.Cut(string(b), "\n")
		grandchild, err = strconv.Atoi(line)
		return ok && err == nil
	}, 10*time.Second, 10*time.Millisecond, "the script did not print its child's pid")
	return p, grandchild, logFile
}

// gone reports whether pid no longer runs: it no longer exists (ESRCH), or,
// on Linux, it is a zombie. A killed grandchild is reaped by whoever inherits
// it, init here, which may take a second or, in a container whose first
// process does not reap, forever; its death is what Stop promises.
func gone(pid int) bool {
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist) && runtime.GOOS == "linux"
	}
	// pid (comm) S ...: comm may hold spaces and parentheses, the state
	// follows the last ')'.
	_, rest, _ := strings.Cut(string(stat[bytes.LastIndexByte(stat, ')')+1:]), " ")
	return strings.HasPrefix(rest, "Z")
}

func TestStopEndsTheGroup(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		grace    time.Duration
		minTaken time.Duration
	}{
		{name: "SIGTERM is enough", script: `sleep 60 & echo $!; wait`, grace: 10 * time.Second},
		// An ignored SIGTERM is inherited by sleep too: only SIGKILL ends them.
		{name: "SIGKILL after grace", script: `trap "" TERM; sleep 60 & echo $!; wait; wait`, grace: 200 * time.Millisecond, minTaken: 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, grandchild, _ := startShell(t, tt.script)
			pid := p.Pid()
			require.NoError(t, syscall.Kill(grandchild, 0), "the grandchild runs before Stop")

			began := time.Now()
			p.Stop(tt.grace)
			taken := time.Since(began)
			require.GreaterOrEqual(t, taken, tt.minTaken)
			require.Less(t, taken, tt.grace+5*time.Second)

			select {
			case <-p.Exited():
			default:
				t.Fatal("Exited is still open after Stop")
			}
			require.True(t, gone(pid), "the child still runs after Stop")
			require.Eventually(t, func() bool { return gone(grandchild) }, 10*time.Second, 10*time.Millisecond,
				"the grandchild %d still runs after Stop", grandchild)
			p.Stop(tt.grace) // a second Stop finds the child stopped
		})
	}
}

func TestExitedWithoutStop(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "child.log")
	p, err := Start(exec.Command("/bin/sh", "-c", "echo out; echo err >&2"), logFile)
	require.NoError(t, err)
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("Exited not closed after the child ended")
	}
	p.Stop(time.Second)
	b, err := os.ReadFile(logFile)
	require.NoError(t, err)
	require.Equal(t, "out\nerr\n", string(b), "stdout and stderr both go to the log")
}

func TestStartFails(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(exec.Command(filepath.Join(dir, "missing")), filepath.Join(dir, "log"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "start "+filepath.Join(dir, "missing"))

	_, err = Start(exec.Command("/bin/true"), filepath.Join(dir, "no-such-dir", "log"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	require.NoError(t, os.WriteFile(path, []byte("first\nsecond\nthird\n"), 0o600))
	tests := []struct {
		name string
		n    int
		want string
	}{
		{name: "whole file", n: 100, want: "first\nsecond\nthird\n"},
		{name: "exactly the file", n: 19, want: "first\nsecond\nthird\n"},
		{name: "cut inside a line starts at the next", n: 9, want: "third\n"},
		{name: "cut just after a newline keeps that line", n: 13, want: "second\nthird\n"},
		{name: "cut inside the last line leaves nothing", n: 3, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, LogTail(path, tt.n))
		})
	}
	require.True(t, strings.HasPrefix(LogTail(path+".missing", 10), "(no log: "))
}

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(3)
	require.NoError(t, err)
	require.Len(t, ports, 3)
	seen := map[int]bool{}
	for _, port := range ports {
		require.False(t, seen[port], "port %d twice", port)
		seen[port] = true
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err)
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		require.NoError(t, err)
		u.Close()
	}
}

// recorder is a testing.TB that records what Skipf, Fatalf, Logf and Errorf
// say and the functions given to Cleanup, and fails when told to.
type recorder struct {
	testing.TB
	skipped, fatal, logged, errored string
	cleanups                        []func()
	failed                          bool
}

func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Logf(format string, args ...any)   { r.logged = fmt.Sprintf(format, args...) }
func (r *recorder) Errorf(format string, args ...any) { r.errored = fmt.Sprintf(format, args...) }
func (r *recorder) Cleanup(f func())                  { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Failed() bool                      { return r.failed }

func TestRequire(t *testing.T) {
	lookErr := &exec.Error{Name: "srv", Err: exec.ErrNotFound}
	tests := []struct {
		name      string
		env       string
		err       error
		hint      string
		wantSkip  string
		wantFatal string
	}{
		{name: "found", env: "1"},
		{name: "missing skips", err: lookErr, hint: "apt-get install srv",
			wantSkip: `srv not found, skipping (set TIB_REQUIRE_REAL=1 to fail instead): exec: "srv": executable file not found in $PATH`},
		{name: "missing fails when required", env: "1", err: lookErr,
			wantFatal: `srv is required (TIB_REQUIRE_REAL=1) but not found: exec: "srv": executable file not found in $PATH`},
		{name: "the hint goes with the failure", env: "1", err: lookErr, hint: "apt-get install srv",
			wantFatal: `srv is required (TIB_REQUIRE_REAL=1) but not found: exec: "srv": executable file not found in $PATH (apt-get install srv)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireEnv, tt.env)
			r := &recorder{TB: t}
			Require(r, "srv", tt.err, tt.hint)
			require.Equal(t, tt.wantSkip, r.skipped)
			require.Equal(t, tt.wantFatal, r.fatal)
		})
	}
}

func TestCloseAtCleanup(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "srv.log")
	require.NoError(t, os.WriteFile(logFile, []byte("listening\nboom\n"), 0o600))
	tests := []struct {
		name        string
		failed      bool
		closeErr    error
		wantLogged  string
		wantErrored string
	}{
		{name: "passed: closed quietly"},
		{name: "failed: the log tail first", failed: true,
			wantLogged: "srv log tail (" + logFile + "):\nlistening\nboom\n"},
		{name: "close error", closeErr: errors.New("busy"), wantErrored: "close srv: busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t, failed: tt.failed}
			closed := 0
			CloseAtCleanup(r, "srv", logFile, func() error { closed++; return tt.closeErr })
			require.Zero(t, closed, "closed before cleanup")
			require.Len(t, r.cleanups, 1)
			r.cleanups[0]()
			require.Equal(t, 1, closed)
			require.Equal(t, tt.wantLogged, r.logged)
			require.Equal(t, tt.wantErrored, r.errored)
		})
	}
}
