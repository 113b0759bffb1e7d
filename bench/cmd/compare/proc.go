package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// userHZ is the unit of utime/stime in /proc/PID/stat. It is 100 on every
// Linux this runs on (USER_HZ is fixed by the ABI, unlike CONFIG_HZ).
const userHZ = 100

// procCPU reads the CPU time of a live process to the nanosecond: the sum
// of its threads' run time in /proc/PID/task/*/schedstat. /proc/PID/stat
// counts in 10 ms ticks, too coarse for a small page; it is the fallback,
// and it also covers exited threads, which a Go program rarely has. It
// returns 0 when the process is gone.
func procCPU(pid int) time.Duration {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread just exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return procStatCPU(pid)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return procStatCPU(pid)
		}
		sum += time.Duration(ns)
	}
	if sum == 0 {
		return procStatCPU(pid)
	}
	return sum
}

// procStatCPU reads utime+stime from /proc/PID/stat.
func procStatCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces: skip past it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// After ")" come: state(3) ppid(4) ... utime(14) stime(15); f[0] is field 3.
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * time.Second / userHZ
}

// memStatus is the memory lines of /proc/PID/status, in bytes.
type memStatus struct {
	RSS, HWM   int64 // VmRSS, VmHWM
	Anon, File int64 // RssAnon (heap, stacks), RssFile (the mapped binary)
}

// procMem reads the resident set now and its peak (VmRSS, VmHWM) in bytes.
func procMem(pid int) (rss, hwm int64) {
	m := procMemStatus(pid)
	return m.RSS, m.HWM
}

func procMemStatus(pid int) memStatus {
	var m memStatus
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = parseKB(v)
		case "VmHWM":
			m.HWM = parseKB(v)
		case "RssAnon":
			m.Anon = parseKB(v)
		case "RssFile":
			m.File = parseKB(v)
		}
	}
	return m
}

func parseKB(v string) int64 {
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n << 10
}

// exitUsage is what the kernel accounted to a child that has been waited for.
type exitUsage struct {
	CPU     time.Duration // user + system
	User    time.Duration
	System  time.Duration
	MaxRSS  int64 // bytes
	ExitErr string
}

func usageOf(st *os.ProcessState) (exitUsage, error) {
	ru, ok := st.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return exitUsage{}, fmt.Errorf("no rusage for pid %d", st.Pid())
	}
	u := exitUsage{
		User:   time.Duration(ru.Utime.Nano()),
		System: time.Duration(ru.Stime.Nano()),
		MaxRSS: ru.Maxrss << 10, // Linux reports KiB
	}
	u.CPU = u.User + u.System
	return u, nil
}

// memTrack samples a process's memory while it runs. VmHWM says how high
// RSS went but not of what; the largest sample says whether the peak was the
// heap (anon) or the executable's pages (file), and when it happened.
type memTrack struct {
	Max     memStatus     // the sample with the largest VmRSS
	MaxAt   time.Duration // when it was taken, from the start of tracking
	MaxAnon int64         // largest RssAnon seen
	MaxFile int64         // largest RssFile seen
	Samples int
}

// trackMem samples pid every period until stop is called, and stop returns
// what it saw. A short peak between samples is missed by the split (never
// by VmHWM): keep period well under the time a scrape takes.
func trackMem(pid int, period time.Duration) (stop func() memTrack) {
	done := make(chan struct{})
	out := make(chan memTrack, 1)
	go func() {
		var t memTrack
		start := time.Now()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			if m := procMemStatus(pid); m.RSS > 0 {
				t.Samples++
				if m.RSS > t.Max.RSS {
					t.Max, t.MaxAt = m, time.Since(start)
				}
				t.MaxAnon = max(t.MaxAnon, m.Anon)
				t.MaxFile = max(t.MaxFile, m.File)
			}
			select {
			case <-done:
				out <- t
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	var res memTrack
	return func() memTrack {
		once.Do(func() { close(done); res = <-out })
		return res
	}
}
