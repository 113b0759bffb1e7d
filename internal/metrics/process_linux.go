package metrics

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// processNames are the process_* families of client_golang's process
// collector that Linux lets us read without a library.
func processNames() []string {
	return []string{
		"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
		"process_start_time_seconds", "process_open_fds", "process_max_fds",
	}
}

// userHZ is the unit of the times in /proc/<pid>/stat: 100 on every Linux
// the bridge runs on (sysconf(_SC_CLK_TCK) needs cgo; procfs assumes the same).
const userHZ = 100

// collectProcess reads /proc/self/stat, /proc/stat, /proc/self/fd and the
// open-files limit. A figure it cannot read is left out, not reported as 0.
func collectProcess(emit func(Family)) {
	gauge := func(name, help string, kind Kind, v float64) {
		emit(Family{Name: name, Help: help, Kind: kind, Metrics: []Metric{{Value: v}}})
	}
	if st, err := readStat(); err == nil {
		gauge("process_cpu_seconds_total", "User and system CPU time the process spent, in seconds.", KindCounter,
			float64(st.utime+st.stime)/userHZ)
		gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", KindGauge, float64(st.vsize))
		gauge("process_resident_memory_bytes", "Resident memory size in bytes.", KindGauge, float64(st.rss*uint64(os.Getpagesize())))
		if boot, err := bootTime(); err == nil {
			gauge("process_start_time_seconds", "When the process started, in seconds since the epoch.", KindGauge,
				float64(boot)+float64(st.starttime)/userHZ)
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		gauge("process_open_fds", "Open file descriptors.", KindGauge, float64(len(fds)))
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		gauge("process_max_fds", "Most file descriptors the process may open.", KindGauge, float64(lim.Cur))
	}
}

type procStat struct{ utime, stime, starttime, vsize, rss uint64 }

// readStat reads the fields of /proc/self/stat the collector needs (proc(5)):
// utime 14, stime 15, starttime 22, vsize 23, rss 24, counting from the pid.
func readStat() (procStat, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, strconv.ErrSyntax
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3, the state
	if len(f) < 22 {
		return procStat{}, strconv.ErrSyntax
	}
	var st procStat
	for _, x := range []struct {
		field int
		v     *uint64
	}{{14, &st.utime}, {15, &st.stime}, {22, &st.starttime}, {23, &st.vsize}, {24, &st.rss}} {
		if *x.v, err = strconv.ParseUint(string(f[x.field-3]), 10, 64); err != nil {
			return procStat{}, err
		}
	}
	return st, nil
}

// bootTime is the btime line of /proc/stat: when the system booted, in
// seconds since the epoch.
func bootTime() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			return strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, strconv.ErrSyntax
}
