package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// result is one tool's run against one page size.
type result struct {
	Tool     string
	Services int
	Round    int

	SamplesPerScrape int // every sample on the page
	TraefikPerScrape int // samples of traefik_* families
	Scrapes          int
	ScrapesGzipped   int // scrapes the tool asked to receive gzipped
	ScrapesProtobuf  int // scrapes answered in delimited protobuf (negotiated)
	// FailedScrapes are scrapes the tool itself counted as failed (the
	// bridge's scrapes_total, Telegraf's logged errors): a run with any is
	// not comparable, since part of a page was not delivered.
	FailedScrapes int
	Wall          time.Duration

	// Usage is from rusage after exit: whole life, start and stop included.
	// Its MaxRSS is not the tool's: Go starts children with vfork, and Linux
	// folds the harness's own high-water RSS into the child's at exec. So
	// PeakRSS, the tool's VmHWM read while it runs, is the memory figure.
	Usage   exitUsage
	PeakRSS int64
	// EndAnon and EndFile split the RSS just before the stop into anonymous
	// memory (heap, stacks) and file pages (mostly the executable).
	EndAnon, EndFile int64
	// SteadyCPU is the CPU between the arrival of scrape 2 and of the last
	// scrape, divided by the scrapes in between: start-up, the first scrape
	// (no deltas yet) and shutdown are left out. Zero with fewer than 3 scrapes.
	SteadyCPU time.Duration
	Writes    writeCounts
}

// cpuPerMSamples is CPU seconds per million samples scraped: the steady
// figure when there is one, else the whole-life one.
func (r result) cpuPerMSamples() float64 {
	per := r.SteadyCPU
	if per == 0 && r.Scrapes > 0 {
		per = r.Usage.CPU / time.Duration(r.Scrapes)
	}
	if r.SamplesPerScrape == 0 {
		return 0
	}
	return per.Seconds() / float64(r.SamplesPerScrape) * 1e6
}

// totalCPUPerMSamples counts the whole life of the process.
func (r result) totalCPUPerMSamples() float64 {
	n := float64(r.Scrapes) * float64(r.SamplesPerScrape)
	if n == 0 {
		return 0
	}
	return r.Usage.CPU.Seconds() / n * 1e6
}

// harness owns the two loopback servers shared by every run.
type harness struct {
	pages              *pageServer
	recv               *receiver
	pageURL, influxURL string
	// influxTLSURL is the receiver over HTTPS with Basic auth; caFile
	// signed its certificate.
	influxTLSURL, caFile string
	outDir               string
	// perf, when set, samples each tool's stacks with `perf record` for the
	// whole run; perf runs as its own process, outside the tool's rusage,
	// but its sampling still costs the tool a little: use separate runs.
	perf bool
	// pprof, when set, fetches a CPU profile of each tool over its steady
	// scrapes and a heap profile at the end, from net/http/pprof: Telegraf's
	// --pprof-addr, and the bridge built by profile.sh (BENCH_PPROF_ADDR).
	pprof bool
}

// preparePages encodes pages 0..k in protobuf when t may be answered in it:
// Telegraf's Accept header and the bridge's (traefik.format auto, the
// default) prefer delimited protobuf, and Traefik's promhttp handler gives a
// scraper what it prefers. A bridge run with TIB_TRAEFIK_FORMAT=text asks
// for text only; the pages cost nothing to have ready.
func (h *harness) preparePages(_ tool, book *pageBook, k int) error {
	if !h.pages.negotiate {
		return nil
	}
	return book.prepareProtobuf(k)
}

// runTool starts t, lets it scrape `scrapes` pages of book, stops it with
// SIGTERM (so it flushes what it holds) and reports what it cost.
func (h *harness) runTool(ctx context.Context, t tool, book *pageBook, scrapes int, interval time.Duration, gzipOut bool, round int) (result, error) {
	res := result{Tool: t.Name, Services: book.services, Round: round}
	// Generate every page before the tool starts: the page server must not
	// make a tool wait, and generation must not compete with it for CPU.
	first := book.get(0)
	book.get(scrapes + 2)
	if err := h.preparePages(t, book, scrapes+2); err != nil {
		return res, err
	}
	res.SamplesPerScrape, res.TraefikPerScrape = first.samples, first.traefik

	dir := filepath.Join(h.outDir, fmt.Sprintf("s%d-r%d", book.services, round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	listen, err := freeLoopbackAddr()
	if err != nil {
		return res, err
	}
	var pprofAddr string
	if h.pprof {
		if pprofAddr, err = freeLoopbackAddr(); err != nil {
			return res, err
		}
	}
	cmd, logf, err := t.command(runSetup{
		PprofAddr:    pprofAddr,
		PageURL:      h.pageURL,
		InfluxURL:    h.influxURL,
		InfluxTLSURL: h.influxTLSURL,
		CAFile:       h.caFile,
		Interval:     interval,
		Gzip:         gzipOut,
		BatchSize:    5000,
		MaxMetrics:   first.samples,
		Listen:       listen,
		Dir:          dir,
	})
	if err != nil {
		return res, err
	}
	defer logf.Close()

	h.recv.reset()
	h.pages.reset(book, nil)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", t.Name, err)
	}
	pid := cmd.Process.Pid
	h.pages.setCPU(func() time.Duration { return procCPU(pid) })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopPerf := func() {}
	if h.perf {
		stopPerf = startPerf(pid, filepath.Join(dir, t.Name+".perf.data"))
	}
	defer stopPerf()
	// From the second scrape (start-up done) over the steady ones.
	cpuProfileDone := saveCPUProfile(ctx, pprofAddr, filepath.Join(dir, t.Name+".cpu.pprof"),
		time.Duration(scrapes-2)*interval, func(ctx context.Context) bool {
			for len(h.pages.served()) < 2 {
				select {
				case <-ctx.Done():
					return false
				case <-time.After(20 * time.Millisecond):
				}
			}
			return true
		})

	// Each scrape is at most an interval apart; allow start-up and slack.
	deadline := time.NewTimer(time.Duration(scrapes+3)*interval + 30*time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return res, ctx.Err()
		case err := <-exited:
			return res, fmt.Errorf("%s exited early (%v); see %s", t.Name, err, logf.Name())
		case <-deadline.C:
			_ = cmd.Process.Kill()
			<-exited
			return res, fmt.Errorf("%s: only %d of %d scrapes in time; see %s", t.Name, len(h.pages.served()), scrapes, logf.Name())
		case <-tick.C:
			if _, hwm := procMem(pid); hwm > res.PeakRSS {
				res.PeakRSS = hwm
			}
			if len(h.pages.served()) >= scrapes {
				break wait
			}
		}
	}
	// Let the last scrape be converted and written before asking the tool to
	// stop, so no tool is judged on work it was interrupted in: wait until
	// it has used no CPU for a moment, but not into the next interval.
	waitIdle(pid, interval*3/4)
	stopPerf()
	m := procMemStatus(pid)
	res.PeakRSS = max(res.PeakRSS, m.HWM)
	res.EndAnon, res.EndFile = m.Anon, m.File
	if !t.isTelegraf() {
		// The bridge's own /metrics carries Go's memstats: where the RSS goes.
		saveURL(ctx, "http://"+listen+"/metrics", filepath.Join(dir, t.Name+".self-metrics.txt"), 5*time.Second)
	}
	if pprofAddr != "" {
		select {
		case <-cpuProfileDone:
		case <-time.After(2 * interval):
		}
		saveURL(ctx, "http://"+pprofAddr+"/debug/pprof/heap", filepath.Join(dir, t.Name+".heap.pprof"), 10*time.Second)
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	var waitErr error
	select {
	case waitErr = <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		waitErr = <-exited
	}
	res.Wall = time.Since(start)
	u, err := usageOf(cmd.ProcessState)
	if err != nil {
		return res, err
	}
	if waitErr != nil {
		u.ExitErr = waitErr.Error()
	}
	res.Usage = u

	served := h.pages.served()
	res.Scrapes = len(served)
	for _, sc := range served {
		if sc.Gzipped {
			res.ScrapesGzipped++
		}
		if sc.Format == formatProtobuf {
			res.ScrapesProtobuf++
		}
	}
	if n := len(served); n >= 3 && served[1].CPU > 0 && served[n-1].CPU > served[1].CPU {
		res.SteadyCPU = (served[n-1].CPU - served[1].CPU) / time.Duration(n-2)
	}
	res.Writes = h.recv.counts()
	if t.isTelegraf() {
		res.FailedScrapes = telegrafScrapeErrors(logf.Name())
	} else {
		res.FailedScrapes = bridgeFailedScrapes(filepath.Join(dir, t.Name+".self-metrics.txt"))
	}
	return res, nil
}

// bridgeFailedScrapes sums the bridge's scrapes_total of every result other
// than success, from the /metrics page saved at the end of a run; -1 if the
// page is missing.
func bridgeFailedScrapes(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "traefik_influxdb_bridge_scrapes_total{") || strings.Contains(line, `result="success"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			n += int(v)
		}
	}
	return n
}

// telegrafScrapeErrors counts the errors inputs.prometheus logged.
func telegrafScrapeErrors(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, " E! ") && strings.Contains(line, "inputs.prometheus") {
			n++
		}
	}
	return n
}

// waitIdle returns once pid has used no CPU for 300 ms, or after limit.
func waitIdle(pid int, limit time.Duration) {
	end := time.Now().Add(limit)
	last := procCPU(pid)
	quietSince := time.Now()
	for time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
		if c := procCPU(pid); c != last {
			last, quietSince = c, time.Now()
			continue
		}
		if time.Since(quietSince) >= 300*time.Millisecond {
			return
		}
	}
}

// sidecarResult is a tool left running on a small page at a long interval.
type sidecarResult struct {
	Tool         string
	Round        int
	Services     int
	Interval     time.Duration
	Scrapes      int
	Window       time.Duration // arrival of the 2nd scrape to arrival of the last
	WindowCPU    time.Duration // CPU used in that window
	RSS, PeakRSS int64         // VmRSS and VmHWM just before stopping
	RSSAnon      int64         // of RSS: anonymous memory (Go heap, stacks)
	RSSFile      int64         // of RSS: file pages (the executable's code and data)
	Mem          memTrack      // RSS sampled every 10 ms: the split at the peak
	Usage        exitUsage
	Writes       writeCounts
}

func (s sidecarResult) coreShare() float64 {
	if s.Window <= 0 {
		return 0
	}
	return s.WindowCPU.Seconds() / s.Window.Seconds()
}

// runSidecar runs one tool alone for d and reports its CPU share and RSS.
func (h *harness) runSidecar(ctx context.Context, t tool, book *pageBook, interval, d time.Duration, round int) (sidecarResult, error) {
	res := sidecarResult{Tool: t.Name, Services: book.services, Interval: interval, Round: round}
	book.get(int(d/interval) + 3)
	if err := h.preparePages(t, book, int(d/interval)+3); err != nil {
		return res, err
	}
	dir := filepath.Join(h.outDir, "sidecar", fmt.Sprintf("r%d", round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	listen, err := freeLoopbackAddr()
	if err != nil {
		return res, err
	}
	var pprofAddr string
	if h.pprof {
		if pprofAddr, err = freeLoopbackAddr(); err != nil {
			return res, err
		}
	}
	cmd, logf, err := t.command(runSetup{
		PageURL: h.pageURL, InfluxURL: h.influxURL, InfluxTLSURL: h.influxTLSURL, CAFile: h.caFile,
		Interval: interval, Gzip: true,
		BatchSize: 5000, MaxMetrics: book.get(0).samples, Listen: listen, Dir: dir,
		PprofAddr: pprofAddr,
	})
	if err != nil {
		return res, err
	}
	defer logf.Close()
	h.recv.reset()
	h.pages.reset(book, nil)
	if err := cmd.Start(); err != nil {
		return res, err
	}
	pid := cmd.Process.Pid
	h.pages.setCPU(func() time.Duration { return procCPU(pid) })
	stopMem := trackMem(pid, 10*time.Millisecond)
	defer stopMem()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if h.perf {
		defer startPerf(pid, filepath.Join(dir, t.Name+".perf.data"))()
	}
	// Over the whole run but the first interval (start-up).
	cpuProfileDone := saveCPUProfile(ctx, pprofAddr, filepath.Join(dir, t.Name+".cpu.pprof"),
		d-interval-5*time.Second, func(ctx context.Context) bool {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(interval):
				return true
			}
		})

	select {
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-exited
		return res, ctx.Err()
	case err := <-exited:
		return res, fmt.Errorf("%s exited early (%v); see %s", t.Name, err, logf.Name())
	case <-time.After(d):
	}
	res.Mem = stopMem()
	m := procMemStatus(pid)
	res.RSS, res.PeakRSS, res.RSSAnon, res.RSSFile = m.RSS, m.HWM, m.Anon, m.File
	if !t.isTelegraf() {
		saveURL(ctx, "http://"+listen+"/metrics", filepath.Join(dir, t.Name+".self-metrics.txt"), 5*time.Second)
	}
	if pprofAddr != "" {
		select {
		case <-cpuProfileDone:
		case <-time.After(15 * time.Second):
		}
		saveURL(ctx, "http://"+pprofAddr+"/debug/pprof/heap", filepath.Join(dir, t.Name+".heap.pprof"), 10*time.Second)
	}
	served := h.pages.served()
	res.Scrapes = len(served)
	// From the 2nd scrape's arrival to the last one's: whole intervals, each
	// holding one scrape's work (and the pings, and whatever idles between),
	// with start-up and the first scrape's buffer growth left out.
	if n := len(served); n >= 3 {
		res.Window = served[n-1].Arrived.Sub(served[1].Arrived)
		res.WindowCPU = served[n-1].CPU - served[1].CPU
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	if u, err := usageOf(cmd.ProcessState); err == nil {
		res.Usage = u
	}
	res.Writes = h.recv.counts()
	return res, nil
}

// startPerf attaches `perf record` to pid and returns the function that
// stops it (idempotent). A missing perf is reported once and ignored.
func startPerf(pid int, out string) func() {
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", out)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "perf:", err)
		return func() {}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
}

// saveCPUProfile fetches a CPU profile of span (at least a second) from the
// tool's pprof address into path, once start says the tool is past its
// start-up; the channel closes when that is done or given up. With no
// address it does nothing and the channel is closed.
func saveCPUProfile(ctx context.Context, pprofAddr, path string, span time.Duration, start func(context.Context) bool) <-chan struct{} {
	done := make(chan struct{})
	if pprofAddr == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		if !start(ctx) {
			return
		}
		secs := max(1, int(span.Seconds()))
		saveURL(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, secs),
			path, time.Duration(secs)*time.Second+10*time.Second)
	}()
	return done
}

// saveURL stores the body of a GET, best effort: it is evidence, not a result.
func saveURL(ctx context.Context, url, out string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "self-metrics:", err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return
	}
	_ = os.WriteFile(out, b, 0o644)
}
