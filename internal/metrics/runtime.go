package metrics

import (
	"runtime"
	"runtime/debug"
	rm "runtime/metrics"
	"sync"
	"time"
)

// RuntimeCollector exports the Go runtime's figures under the names
// client_golang's Go collector gives them (go_goroutines, go_memstats_*,
// go_gc_duration_seconds, ...), read from runtime/metrics, which does not
// stop the world as runtime.ReadMemStats does, and the process's under the
// process_* names where the system tells them (ProcessCollector).
type RuntimeCollector struct {
	mu      sync.Mutex
	samples []rm.Sample
	gc      debug.GCStats
}

// The runtime/metrics names read, in this order.
var runtimeSamples = []string{
	"/sched/gomaxprocs:threads",
	"/gc/gogc:percent",
	"/gc/gomemlimit:bytes",
	"/gc/heap/goal:bytes",
	"/gc/heap/allocs:bytes",
	"/gc/heap/allocs:objects",
	"/gc/heap/frees:objects",
	"/gc/heap/tiny/allocs:objects",
	"/gc/heap/objects:objects",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes",
	"/memory/classes/total:bytes",
}

const (
	sGomaxprocs = iota
	sGOGC
	sMemLimit
	sHeapGoal
	sAllocBytes
	sAllocObjects
	sFreeObjects
	sTinyObjects
	sHeapObjects
	sHeapObjectBytes
	sHeapUnused
	sHeapFree
	sHeapReleased
	sStacks
	sOSStacks
	sTotal
)

func NewRuntimeCollector() *RuntimeCollector {
	c := &RuntimeCollector{samples: make([]rm.Sample, len(runtimeSamples))}
	// Five quantiles of the recent pauses: min, 25 %, median, 75 %, max.
	c.gc.PauseQuantiles = make([]time.Duration, 5)
	for i, n := range runtimeSamples {
		c.samples[i].Name = n
	}
	return c
}

type gauge struct {
	name, help string
	kind       Kind
	value      func(v []float64) float64
}

// runtimeGauges are computed from the samples as client_golang computes its
// MemStats equivalents.
var runtimeGauges = []gauge{
	{"go_sched_gomaxprocs_threads", "GOMAXPROCS: how many goroutines can run at once.", KindGauge, func(v []float64) float64 { return v[sGomaxprocs] }},
	{"go_gc_gogc_percent", "GOGC: heap growth over the live heap that starts a collection, in percent.", KindGauge, func(v []float64) float64 { return v[sGOGC] }},
	{"go_gc_gomemlimit_bytes", "GOMEMLIMIT: the runtime's soft memory limit.", KindGauge, func(v []float64) float64 { return v[sMemLimit] }},
	{"go_memstats_next_gc_bytes", "Heap size at which the next collection starts.", KindGauge, func(v []float64) float64 { return v[sHeapGoal] }},
	{"go_memstats_alloc_bytes", "Bytes of heap objects allocated and not yet freed.", KindGauge, func(v []float64) float64 { return v[sHeapObjectBytes] }},
	{"go_memstats_alloc_bytes_total", "Bytes allocated on the heap since the start.", KindCounter, func(v []float64) float64 { return v[sAllocBytes] }},
	{"go_memstats_heap_alloc_bytes", "Bytes of heap objects allocated and not yet freed.", KindGauge, func(v []float64) float64 { return v[sHeapObjectBytes] }},
	{"go_memstats_heap_inuse_bytes", "Bytes in heap spans in use.", KindGauge, func(v []float64) float64 { return v[sHeapObjectBytes] + v[sHeapUnused] }},
	{"go_memstats_heap_idle_bytes", "Bytes in heap spans not in use, returned to the system or not.", KindGauge, func(v []float64) float64 { return v[sHeapFree] + v[sHeapReleased] }},
	{"go_memstats_heap_released_bytes", "Bytes of heap returned to the system.", KindGauge, func(v []float64) float64 { return v[sHeapReleased] }},
	{"go_memstats_heap_sys_bytes", "Bytes of heap obtained from the system.", KindGauge, func(v []float64) float64 {
		return v[sHeapObjectBytes] + v[sHeapUnused] + v[sHeapFree] + v[sHeapReleased]
	}},
	{"go_memstats_heap_objects", "Heap objects allocated and not yet freed.", KindGauge, func(v []float64) float64 { return v[sHeapObjects] }},
	{"go_memstats_mallocs_total", "Heap objects allocated since the start.", KindCounter, func(v []float64) float64 { return v[sAllocObjects] + v[sTinyObjects] }},
	{"go_memstats_frees_total", "Heap objects freed since the start.", KindCounter, func(v []float64) float64 { return v[sFreeObjects] + v[sTinyObjects] }},
	{"go_memstats_stack_inuse_bytes", "Bytes in stack spans in use.", KindGauge, func(v []float64) float64 { return v[sStacks] }},
	{"go_memstats_stack_sys_bytes", "Bytes of stack memory obtained from the system.", KindGauge, func(v []float64) float64 { return v[sStacks] + v[sOSStacks] }},
	{"go_memstats_sys_bytes", "Bytes of memory obtained from the system.", KindGauge, func(v []float64) float64 { return v[sTotal] }},
}

func (c *RuntimeCollector) Names() []string {
	names := []string{"go_info", "go_goroutines", "go_threads", "go_gc_duration_seconds"}
	for _, g := range runtimeGauges {
		names = append(names, g.name)
	}
	return append(names, processNames()...)
}

func (c *RuntimeCollector) Collect(emit func(Family)) {
	c.mu.Lock()
	rm.Read(c.samples)
	vals := make([]float64, len(c.samples))
	for i, s := range c.samples {
		switch s.Value.Kind() {
		case rm.KindUint64:
			vals[i] = float64(s.Value.Uint64())
		case rm.KindFloat64:
			vals[i] = s.Value.Float64()
		}
	}
	debug.ReadGCStats(&c.gc)
	gc := Metric{Count: uint64(c.gc.NumGC), Sum: c.gc.PauseTotal.Seconds()}
	for i, q := range c.gc.PauseQuantiles {
		gc.Quantiles = append(gc.Quantiles, Quantile{float64(i) / 4, q.Seconds()})
	}
	c.gc.Pause, c.gc.PauseEnd = c.gc.Pause[:0], c.gc.PauseEnd[:0]
	c.mu.Unlock()

	emit(Family{Name: "go_info", Help: "Always 1; the label says which Go built the program.", Kind: KindGauge,
		Metrics: []Metric{{Labels: []Label{{"version", runtime.Version()}}, Value: 1}}})
	// runtime.NumGoroutine, not /sched/goroutines, which counts the
	// runtime's own goroutines too since Go 1.26.
	emit(Family{Name: "go_goroutines", Help: "Goroutines that currently exist.", Kind: KindGauge,
		Metrics: []Metric{{Value: float64(runtime.NumGoroutine())}}})
	threads, _ := runtime.ThreadCreateProfile(nil)
	emit(Family{Name: "go_threads", Help: "Operating system threads the runtime created.", Kind: KindGauge,
		Metrics: []Metric{{Value: float64(threads)}}})
	emit(Family{Name: "go_gc_duration_seconds", Help: "Pauses of the garbage collector: quantiles of the recent ones, count and sum of all.",
		Kind: KindSummary, Metrics: []Metric{gc}})
	for _, g := range runtimeGauges {
		emit(Family{Name: g.name, Help: g.help, Kind: g.kind, Metrics: []Metric{{Value: g.value(vals)}}})
	}
	collectProcess(emit)
}
