//go:build unix

// The RuntimeCollector's tests. They need syscall.Getrusage, hence unix; the
// process_* checks need /proc and run on Linux only, where the bridge runs.

package metrics

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stretchr/testify/require"
)

// testBinaryStart is taken while the test binary initialises, a few
// milliseconds after the process started.
var testBinaryStart = time.Now()

// collectByName runs c.Collect and returns the families by name; a name
// emitted twice fails the test, as Prometheus would reject the page.
func collectByName(t *testing.T, c Collector) map[string]Family {
	t.Helper()
	fams := map[string]Family{}
	c.Collect(func(f Family) {
		_, dup := fams[f.Name]
		require.False(t, dup, "%s emitted twice", f.Name)
		fams[f.Name] = f
	})
	return fams
}

// value is the value of the one series of a family without labels.
func value(t *testing.T, fams map[string]Family, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "%s not emitted", name)
	require.Len(t, f.Metrics, 1, name)
	return f.Metrics[0].Value
}

// theirValue is the value (or, for a summary, the count) of the one series
// of a parsed family.
func theirValue(t *testing.T, fams map[string]parsedFamily, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "client_golang has no %s", name)
	require.Len(t, f.Metrics, 1, name)
	if f.Type == "SUMMARY" {
		return float64(f.Metrics[0].Count)
	}
	v, err := strconv.ParseFloat(f.Metrics[0].Value, 64)
	require.NoError(t, err)
	return v
}

// clientGolangRuntime is what the bridge served before: client_golang's Go
// and process collectors, parsed back, by name.
func clientGolangRuntime(t *testing.T) map[string]parsedFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{ReportErrors: true}))
	byName := map[string]parsedFamily{}
	for _, f := range parseText(t, theirText(t, reg)) {
		byName[f.Name] = f
	}
	return byName
}

func kindType(k Kind) string { return strings.ToUpper(k.String()) }

// TestRuntimeCollectorNames checks that Names and Collect agree, that
// Register takes the collector, and that expfmt parses what it writes with
// the types Collect gave.
func TestRuntimeCollectorNames(t *testing.T) {
	c := NewRuntimeCollector()
	fams := collectByName(t, c)
	emitted := make([]string, 0, len(fams))
	for n, f := range fams {
		emitted = append(emitted, n)
		// Gather leaves out an empty family; that would hide a figure.
		require.NotEmpty(t, f.Metrics, n)
	}
	// Every name in Names is emitted and nothing else is: on Linux every
	// process_* figure is readable, so none may be missing either.
	require.ElementsMatch(t, c.Names(), emitted)

	r := NewRegistry()
	require.NoError(t, r.Register(c))
	parsed := parseText(t, gatherText(r))
	require.Len(t, parsed, len(fams))
	for _, p := range parsed {
		require.Equal(t, kindType(fams[p.Name].Kind), p.Type, p.Name)
	}
	// A second RuntimeCollector clashes on every name.
	require.ErrorContains(t, r.Register(NewRuntimeCollector()), "already registered")
}

// leftOut are the families of client_golang's Go and process collectors we
// do not export: the runtime's metadata and profiling classes, which the
// bridge's dashboards never read, the time of the last collection, the
// network counters of the whole network namespace (not of the process) and
// the address-space limit.
var leftOut = []string{
	"go_memstats_buck_hash_sys_bytes",
	"go_memstats_gc_sys_bytes",
	"go_memstats_last_gc_time_seconds",
	"go_memstats_mcache_inuse_bytes",
	"go_memstats_mcache_sys_bytes",
	"go_memstats_mspan_inuse_bytes",
	"go_memstats_mspan_sys_bytes",
	"go_memstats_other_sys_bytes",
	"process_network_receive_bytes_total",
	"process_network_transmit_bytes_total",
	"process_virtual_memory_max_bytes",
}

// TestRuntimeCollectorMatchesClientGolang compares the families with those
// of client_golang's collectors, which they replace: dashboards and alerts
// written for those must find the same names, types and label names, and
// about the same values.
func TestRuntimeCollectorMatchesClientGolang(t *testing.T) {
	runtime.GC() // so that no collection is due between the two reads
	theirs := clientGolangRuntime(t)
	r := NewRegistry()
	r.MustRegister(NewRuntimeCollector())
	ours := parseText(t, gatherText(r))
	fams := collectByName(t, NewRuntimeCollector())

	var oursNames []string
	for _, f := range ours {
		oursNames = append(oursNames, f.Name)
		p, ok := theirs[f.Name]
		require.True(t, ok, "client_golang has no %s", f.Name)
		require.Equal(t, p.Type, f.Type, f.Name)
		require.Len(t, f.Metrics, len(p.Metrics), f.Name)
		labelNames := func(m parsedMetric) []string {
			var ns []string
			for _, l := range m.Labels {
				ns = append(ns, l[:strings.IndexByte(l, '=')])
			}
			return ns
		}
		quantiles := func(m parsedMetric) []string {
			var qs []string
			for _, q := range m.Quantiles {
				qs = append(qs, q[:strings.IndexByte(q, ':')])
			}
			return qs
		}
		require.Equal(t, labelNames(p.Metrics[0]), labelNames(f.Metrics[0]), f.Name)
		require.Equal(t, quantiles(p.Metrics[0]), quantiles(f.Metrics[0]), f.Name)
	}
	var missing []string
	for n := range theirs {
		if !slices.Contains(oursNames, n) {
			missing = append(missing, n)
		}
	}
	slices.Sort(missing)
	want := slices.Clone(leftOut)
	if runtime.GOOS != "linux" {
		// Elsewhere client_golang's process collector may emit some
		// process_* figures we do not; list only the go_* ones.
		want = slices.DeleteFunc(want, func(n string) bool { return strings.HasPrefix(n, "process_") })
		missing = slices.DeleteFunc(missing, func(n string) bool { return strings.HasPrefix(n, "process_") })
	}
	require.Equal(t, want, missing, "update leftOut and its comment")

	// The same settings, read the same way, must be the same.
	require.Equal(t, theirs["go_info"].Metrics, ours[slices.IndexFunc(ours, func(f parsedFamily) bool { return f.Name == "go_info" })].Metrics)
	for _, n := range []string{"go_gc_gogc_percent", "go_gc_gomemlimit_bytes", "go_sched_gomaxprocs_threads"} {
		require.Equal(t, theirValue(t, theirs, n), value(t, fams, n), n)
	}
	// Counters read after client_golang's are at least as high, and not by
	// much: the test allocates little between the reads.
	for _, n := range []string{"go_memstats_alloc_bytes_total", "go_memstats_mallocs_total", "go_gc_duration_seconds"} {
		their := theirValue(t, theirs, n)
		our := value(t, fams, n)
		if n == "go_gc_duration_seconds" {
			our = float64(fams[n].Metrics[0].Count)
		}
		require.GreaterOrEqual(t, our, their, n)
		require.Less(t, our-their, max(their/4, 1<<20), n)
	}
	// Gauges of memory within a quarter or 4 MiB: a figure computed from
	// the wrong runtime/metrics sample is off by more (heap_sys against
	// sys, stack_inuse against sys, ...); equal-sized mix-ups are caught by
	// TestRuntimeCollectorGoValues.
	for _, n := range []string{
		"go_memstats_alloc_bytes", "go_memstats_heap_alloc_bytes", "go_memstats_heap_idle_bytes",
		"go_memstats_heap_inuse_bytes", "go_memstats_heap_released_bytes", "go_memstats_heap_sys_bytes",
		"go_memstats_next_gc_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_stack_sys_bytes",
		"go_memstats_sys_bytes",
	} {
		their := theirValue(t, theirs, n)
		require.InDelta(t, their, value(t, fams, n), max(their/4, 4<<20), n)
	}
	require.InDelta(t, theirValue(t, theirs, "go_memstats_heap_objects"), value(t, fams, "go_memstats_heap_objects"), 20000)
	require.InDelta(t, theirValue(t, theirs, "go_threads"), value(t, fams, "go_threads"), 4)

	if runtime.GOOS == "linux" {
		// Both read the same fields of /proc the same way.
		require.InDelta(t, theirValue(t, theirs, "process_start_time_seconds"), value(t, fams, "process_start_time_seconds"), 0.01)
		require.Equal(t, theirValue(t, theirs, "process_max_fds"), value(t, fams, "process_max_fds"))
		require.InDelta(t, theirValue(t, theirs, "process_open_fds"), value(t, fams, "process_open_fds"), 3)
		require.InDelta(t, theirValue(t, theirs, "process_virtual_memory_bytes"), value(t, fams, "process_virtual_memory_bytes"), 64<<20)
		require.InDelta(t, theirValue(t, theirs, "process_resident_memory_bytes"), value(t, fams, "process_resident_memory_bytes"), 16<<20)
		their, our := theirValue(t, theirs, "process_cpu_seconds_total"), value(t, fams, "process_cpu_seconds_total")
		require.GreaterOrEqual(t, our, their)
		require.Less(t, our-their, 1.0)
	}
}

// TestRuntimeCollectorGoValues sets or provokes what each go_* figure reports
// and checks the figure follows: a family fed from the wrong runtime/metrics
// sample fails here.
func TestRuntimeCollectorGoValues(t *testing.T) {
	c := NewRuntimeCollector()
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"go_info is runtime.Version", func(t *testing.T) {
			f := collectByName(t, c)["go_info"]
			require.Equal(t, []Metric{{Labels: []Label{{"version", runtime.Version()}}, Value: 1}}, f.Metrics)
		}},
		{"go_goroutines follows runtime.NumGoroutine", func(t *testing.T) {
			// The level, not only the change: runtime/metrics' count
			// includes the runtime's own goroutines since Go 1.26, which
			// would show a jump on dashboards built on client_golang's.
			const n = 100
			wantBefore := runtime.NumGoroutine()
			before := value(t, collectByName(t, c), "go_goroutines")
			require.InDelta(t, float64(wantBefore), before, 2)
			stop := make(chan struct{})
			defer close(stop)
			for range n {
				go func() { <-stop }()
			}
			got := value(t, collectByName(t, c), "go_goroutines")
			require.Equal(t, n, runtime.NumGoroutine()-wantBefore, "another goroutine started or ended; the check below would be wrong")
			require.Equal(t, float64(n), got-before)
		}},
		{"go_gc_gogc_percent is GOGC", func(t *testing.T) {
			defer debug.SetGCPercent(debug.SetGCPercent(137))
			require.Equal(t, 137.0, value(t, collectByName(t, c), "go_gc_gogc_percent"))
		}},
		{"go_gc_gomemlimit_bytes is GOMEMLIMIT", func(t *testing.T) {
			const limit = 3<<30 + 4096
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
			require.Equal(t, float64(limit), value(t, collectByName(t, c), "go_gc_gomemlimit_bytes"))
		}},
		{"go_sched_gomaxprocs_threads is GOMAXPROCS", func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
			require.Equal(t, 3.0, value(t, collectByName(t, c), "go_sched_gomaxprocs_threads"))
		}},
		{"go_threads counts threads", func(t *testing.T) {
			n, _ := runtime.ThreadCreateProfile(nil)
			got := value(t, collectByName(t, c), "go_threads")
			require.GreaterOrEqual(t, got, 1.0)
			require.InDelta(t, float64(n), got, 2)
		}},
		{"go_gc_duration_seconds counts collections", func(t *testing.T) {
			var before debug.GCStats
			debug.ReadGCStats(&before)
			for range 3 {
				runtime.GC()
			}
			m := collectByName(t, c)["go_gc_duration_seconds"].Metrics
			var after debug.GCStats
			debug.ReadGCStats(&after)
			require.Len(t, m, 1)
			require.GreaterOrEqual(t, m[0].Count, uint64(before.NumGC+3))
			require.LessOrEqual(t, m[0].Count, uint64(after.NumGC))
			require.Greater(t, m[0].Sum, 0.0)
			var qs []float64
			for i, q := range m[0].Quantiles {
				require.Equal(t, float64(i)/4, q.Quantile)
				qs = append(qs, q.Value)
			}
			require.Len(t, qs, 5)
			require.True(t, slices.IsSorted(qs), "quantiles %v", qs)
			require.Greater(t, qs[4], 0.0, "the longest recent pause")
			require.GreaterOrEqual(t, m[0].Sum, qs[4], "all pauses together are at least the longest")
			// With automatic collection off, none runs between Collect and
			// the test's own ReadGCStats: the figures must be those.
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			runtime.GC()
			m = collectByName(t, c)["go_gc_duration_seconds"].Metrics
			want := debug.GCStats{PauseQuantiles: make([]time.Duration, 5)}
			debug.ReadGCStats(&want)
			require.Equal(t, uint64(want.NumGC), m[0].Count)
			require.Equal(t, want.PauseTotal.Seconds(), m[0].Sum)
			for i, q := range m[0].Quantiles {
				require.Equal(t, want.PauseQuantiles[i].Seconds(), q.Value, "quantile %v", q.Quantile)
			}
			// Reading again must not lose the history (Collect reuses its
			// GCStats buffers).
			m2 := collectByName(t, c)["go_gc_duration_seconds"].Metrics
			require.GreaterOrEqual(t, m2[0].Count, m[0].Count)
			require.GreaterOrEqual(t, m2[0].Sum, m[0].Sum)
		}},
		{"memory figures are consistent with each other", func(t *testing.T) {
			// One Collect reads one runtime/metrics snapshot, so these hold
			// exactly; each catches two samples mixed up.
			f := collectByName(t, c)
			v := func(n string) float64 { return value(t, f, n) }
			require.Equal(t, v("go_memstats_heap_alloc_bytes"), v("go_memstats_alloc_bytes"))
			require.Equal(t, v("go_memstats_heap_sys_bytes"), v("go_memstats_heap_inuse_bytes")+v("go_memstats_heap_idle_bytes"))
			require.Equal(t, v("go_memstats_heap_objects"), v("go_memstats_mallocs_total")-v("go_memstats_frees_total"))
			require.GreaterOrEqual(t, v("go_memstats_heap_inuse_bytes"), v("go_memstats_heap_alloc_bytes"))
			require.GreaterOrEqual(t, v("go_memstats_heap_idle_bytes"), v("go_memstats_heap_released_bytes"))
			require.GreaterOrEqual(t, v("go_memstats_stack_sys_bytes"), v("go_memstats_stack_inuse_bytes"))
			require.Greater(t, v("go_memstats_stack_inuse_bytes"), 0.0)
			require.Greater(t, v("go_memstats_sys_bytes"), v("go_memstats_heap_sys_bytes")+v("go_memstats_stack_sys_bytes"))
			require.GreaterOrEqual(t, v("go_memstats_alloc_bytes_total"), v("go_memstats_alloc_bytes"))
			require.Greater(t, v("go_memstats_next_gc_bytes"), 0.0)
		}},
		{"memory figures against runtime.ReadMemStats", func(t *testing.T) {
			runtime.GC() // sweeps everything, so nothing moves between the reads but what they allocate
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			f := collectByName(t, c)
			// The heap goal is only set by a collection.
			require.Equal(t, float64(ms.NextGC), value(t, f, "go_memstats_next_gc_bytes"))
			for _, x := range []struct {
				name string
				want uint64
			}{
				{"go_memstats_heap_sys_bytes", ms.HeapSys},
				{"go_memstats_stack_sys_bytes", ms.StackSys},
				{"go_memstats_stack_inuse_bytes", ms.StackInuse},
				{"go_memstats_sys_bytes", ms.Sys},
				{"go_memstats_heap_alloc_bytes", ms.HeapAlloc},
				{"go_memstats_heap_inuse_bytes", ms.HeapInuse},
				{"go_memstats_heap_idle_bytes", ms.HeapIdle},
				{"go_memstats_heap_released_bytes", ms.HeapReleased},
				{"go_memstats_heap_objects", ms.HeapObjects},
			} {
				require.InDelta(t, float64(x.want), value(t, f, x.name), max(float64(x.want)/20, 256<<10), x.name)
			}
		}},
		{"allocation counters follow allocations", func(t *testing.T) {
			const n, size = 20000, 64
			keep := make([]*[size]byte, n)
			before := collectByName(t, c)
			for i := range keep {
				keep[i] = new([size]byte)
			}
			after := collectByName(t, c)
			runtime.KeepAlive(keep)
			d := func(name string) float64 { return value(t, after, name) - value(t, before, name) }
			// runtime/metrics counts small objects when a per-P span cache
			// is refilled, so up to a span's worth lags behind.
			require.InEpsilon(t, float64(n), d("go_memstats_mallocs_total"), 0.05)
			require.InEpsilon(t, float64(n*size), d("go_memstats_alloc_bytes_total"), 0.05)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// procStatus is a field of /proc/self/status in bytes ("VmRSS:  1234 kB").
func procStatus(t *testing.T, field string) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			f := strings.Fields(string(v))
			require.Len(t, f, 2, "%s: %q", field, v)
			require.Equal(t, "kB", f[1])
			kb, err := strconv.ParseFloat(f[0], 64)
			require.NoError(t, err)
			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// cpuSeconds is the process's user and system time by getrusage(2), a
// source independent of /proc/self/stat, exact to the microsecond.
func cpuSeconds(t *testing.T) float64 {
	t.Helper()
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// TestProcessMetrics checks each process_* figure against a source other
// than the one the collector reads.
func TestProcessMetrics(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process_* figures are exported on Linux only")
	}
	c := NewRuntimeCollector()
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"cpu seconds against getrusage", func(t *testing.T) {
			// Burn some CPU so that a figure stuck at 0 fails.
			for start := cpuSeconds(t); cpuSeconds(t)-start < 0.1; {
			}
			before := cpuSeconds(t)
			got := value(t, collectByName(t, c), "process_cpu_seconds_total")
			after := cpuSeconds(t)
			// /proc/self/stat counts user and system time each in whole
			// ticks of 10 ms, cut down: up to 20 ms below getrusage.
			require.GreaterOrEqual(t, got, before-0.025)
			require.LessOrEqual(t, got, after+0.005)
		}},
		{"resident memory against VmRSS", func(t *testing.T) {
			want := procStatus(t, "VmRSS")
			got := value(t, collectByName(t, c), "process_resident_memory_bytes")
			// Both count the same pages but at different moments; a wrong
			// page size or field is off by far more than a factor of 2.
			require.Greater(t, got, 1e6)
			require.InEpsilon(t, want, got, 0.5, "VmRSS %v, ours %v", want, got)
		}},
		{"resident memory follows touched memory", func(t *testing.T) {
			// Memory mapped outside the Go heap, which may hold resident
			// pages free for reuse; each page touched adds to the RSS.
			const size = 64 << 20
			b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
			require.NoError(t, err)
			defer func() { require.NoError(t, syscall.Munmap(b)) }()
			before := value(t, collectByName(t, c), "process_resident_memory_bytes")
			for i := 0; i < len(b); i += os.Getpagesize() {
				b[i] = 1
			}
			after := value(t, collectByName(t, c), "process_resident_memory_bytes")
			require.InDelta(t, float64(size), after-before, size/8)
		}},
		{"virtual memory against VmSize", func(t *testing.T) {
			want := procStatus(t, "VmSize")
			got := value(t, collectByName(t, c), "process_virtual_memory_bytes")
			require.InEpsilon(t, want, got, 0.1, "VmSize %v, ours %v", want, got)
		}},
		{"start time is when the test binary started", func(t *testing.T) {
			got := value(t, collectByName(t, c), "process_start_time_seconds")
			start := float64(testBinaryStart.UnixNano()) / 1e9
			// The start is counted in ticks after a boot time in whole
			// seconds: it may read up to a second early, never late.
			require.LessOrEqual(t, got, start+0.01)
			require.GreaterOrEqual(t, got, start-10, "more than 10 s before the package initialised")
			require.InDelta(t, theirValue(t, clientGolangRuntime(t), "process_start_time_seconds"), got, 0.01)
		}},
		{"open fds count files opened", func(t *testing.T) {
			// A first open may add the poller's descriptors; do it before
			// counting.
			f, err := os.Open(os.DevNull)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			const n = 7
			before := value(t, collectByName(t, c), "process_open_fds")
			for range n {
				f, err := os.Open(os.DevNull)
				require.NoError(t, err)
				defer f.Close()
			}
			after := value(t, collectByName(t, c), "process_open_fds")
			require.Equal(t, float64(n), after-before)
			fds, err := os.ReadDir("/proc/self/fd")
			require.NoError(t, err)
			// Both list the directory while holding one descriptor of it.
			require.Equal(t, float64(len(fds)), after)
		}},
		{"max fds is the soft limit", func(t *testing.T) {
			var lim syscall.Rlimit
			require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
			got := value(t, collectByName(t, c), "process_max_fds")
			require.Equal(t, float64(lim.Cur), got)
			require.Equal(t, theirValue(t, clientGolangRuntime(t), "process_max_fds"), got)
		}},
		{"command name with parentheses and spaces", func(t *testing.T) {
			// /proc/self/stat's second field is the command name in
			// parentheses, which may hold ") " and spaces itself; the
			// fields after it must still be found.
			old, err := os.ReadFile("/proc/self/comm")
			require.NoError(t, err)
			if err := os.WriteFile("/proc/self/comm", []byte("x) 1 (2 3 4"), 0); err != nil {
				t.Skipf("cannot rename the process: %v", err)
			}
			t.Cleanup(func() { _ = os.WriteFile("/proc/self/comm", bytes.TrimSuffix(old, []byte("\n")), 0) })
			stat, err := os.ReadFile("/proc/self/stat")
			require.NoError(t, err)
			require.Contains(t, string(stat), "(x) 1 (2 3 4)")

			f := collectByName(t, c)
			theirs := clientGolangRuntime(t)
			require.InDelta(t, theirValue(t, theirs, "process_start_time_seconds"), value(t, f, "process_start_time_seconds"), 0.01)
			require.InEpsilon(t, procStatus(t, "VmSize"), value(t, f, "process_virtual_memory_bytes"), 0.1)
			require.InEpsilon(t, procStatus(t, "VmRSS"), value(t, f, "process_resident_memory_bytes"), 0.5)
			require.InDelta(t, cpuSeconds(t), value(t, f, "process_cpu_seconds_total"), 0.05)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}
