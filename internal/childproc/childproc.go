// Package childproc runs a server that a test needs (influxd, dnsmasq) as a
// child process that does not outlive the test: the child leads a process
// group of its own, so Stop reaches whatever it forks (SIGTERM to the group,
// then SIGKILL once a grace period has passed), and on Linux the kernel kills
// it if the test binary dies without cleaning up. The child's stdout and
// stderr go to a log file, whose tail LogTail returns for an error message.
// FreePorts, Require and CloseAtCleanup are the rest of what every such
// launcher needs.
package childproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Process is one started child.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	log    *os.File
	stop   sync.Once
}

// Start starts cmd with its stdout and stderr appended to logFile (created
// if missing) and its SysProcAttr replaced by a process group of its own.
// The rest of cmd (Dir, Env) is the caller's.
func Start(cmd *exec.Cmd, logFile string) (*Process, error) {
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{}), log: log}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the child's process id, which is also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the child has exited and been waited for, whether
// Stop ended it or it ended by itself.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Signal sends sig to the child alone, not to its group (SIGHUP to reload,
// for example).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM to the child's process group, then SIGKILL if the child
// has not exited after grace, and returns once it has exited and its log is
// closed. Only the first call signals; later ones wait for it.
func (p *Process) Stop(grace time.Duration) {
	p.stop.Do(func() {
		defer p.log.Close()
		signalGroup(p.Pid(), sigTerm)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.exited:
			return
		case <-t.C:
		}
		signalGroup(p.Pid(), sigKill)
		<-p.exited
	})
}

// LogTail returns up to the last n bytes of the file at path, starting at a
// line's start when it had to cut, or a note saying why there is no log.
func LogTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if cut := len(b) - n; cut > 0 {
		if b[cut-1] != '\n' {
			if i := bytes.IndexByte(b[cut:], '\n'); i >= 0 {
				cut += i + 1
			}
		}
		b = b[cut:]
	}
	return string(b)
}
