package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// row is the median over rounds of one tool at one page size.
type row struct {
	Tool     string
	Services int
	Rounds   int

	Samples, Traefik int // per scrape, on the page
	Scrapes          float64
	Format           string // the page format the tool was served: text, protobuf or mixed

	CPUPerM      float64 // steady CPU s per million samples scraped
	TotalCPUPerM float64 // whole-life CPU s per million samples scraped
	CPUPerScrape time.Duration
	TotalCPU     time.Duration
	PeakRSS      int64
	EndAnon      int64
	EndFile      int64

	LinesPerScrape  float64
	FieldsPerScrape float64
	WirePerScrape   float64 // bytes on the wire per scrape
	RawPerScrape    float64 // bytes of line protocol per scrape
	Rejected        int64
	FailedScrapes   int // over every round
}

func summarize(rs []result) []row {
	type key struct {
		tool     string
		services int
	}
	groups := map[key][]result{}
	var order []key
	for _, r := range rs {
		k := key{r.Tool, r.Services}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	rank := map[string]int{toolBridge: 0, toolBridgeShipped: 1, toolBridgeTelegraf: 2, toolTelegraf: 3}
	slices.SortStableFunc(order, func(a, b key) int {
		if a.services != b.services {
			return a.services - b.services
		}
		return rank[a.tool] - rank[b.tool]
	})
	var rows []row
	for _, k := range order {
		g := groups[k]
		per := func(f func(result) float64) float64 {
			v := make([]float64, len(g))
			for i, r := range g {
				v[i] = f(r)
			}
			return median(v)
		}
		perScrape := func(f func(result) int64) float64 {
			return per(func(r result) float64 { return float64(f(r)) / float64(max(r.Scrapes, 1)) })
		}
		var rejected int64
		failed, scrapes, protobuf := 0, 0, 0
		for _, r := range g {
			rejected += r.Writes.Rejected
			failed += max(r.FailedScrapes, 0)
			scrapes += r.Scrapes
			protobuf += r.ScrapesProtobuf
		}
		format := "mixed"
		switch protobuf {
		case 0:
			format = formatText
		case scrapes:
			format = formatProtobuf
		}
		rows = append(rows, row{
			Tool: k.tool, Services: k.services, Rounds: len(g),
			Samples: g[0].SamplesPerScrape, Traefik: g[0].TraefikPerScrape,
			Scrapes:      per(func(r result) float64 { return float64(r.Scrapes) }),
			Format:       format,
			CPUPerM:      per(result.cpuPerMSamples),
			TotalCPUPerM: per(result.totalCPUPerMSamples),
			CPUPerScrape: time.Duration(per(func(r result) float64 {
				if r.SteadyCPU > 0 {
					return float64(r.SteadyCPU)
				}
				return float64(r.Usage.CPU) / float64(max(r.Scrapes, 1))
			})),
			TotalCPU:        time.Duration(per(func(r result) float64 { return float64(r.Usage.CPU) })),
			PeakRSS:         int64(per(func(r result) float64 { return float64(r.PeakRSS) })),
			EndAnon:         int64(per(func(r result) float64 { return float64(r.EndAnon) })),
			EndFile:         int64(per(func(r result) float64 { return float64(r.EndFile) })),
			LinesPerScrape:  perScrape(func(r result) int64 { return r.Writes.Lines }),
			FieldsPerScrape: perScrape(func(r result) int64 { return r.Writes.Fields }),
			WirePerScrape:   perScrape(func(r result) int64 { return r.Writes.WireBytes }),
			RawPerScrape:    perScrape(func(r result) int64 { return r.Writes.RawBytes }),
			Rejected:        rejected,
			FailedScrapes:   failed,
		})
	}
	return rows
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func printTables(w io.Writer, rows []row, sides []sidecarResult) {
	if len(rows) > 0 {
		fmt.Fprintf(w, "\n### Per tool (median of rounds)\n\n")
		fmt.Fprintln(w, "| services | tool | page format | samples/scrape | scrapes | CPU s per M samples (steady) | CPU s per M samples (whole run) | CPU per scrape | CPU whole run | peak RSS (VmHWM) MiB | RSS at end: anon + file MiB | lines/scrape | fields/scrape | KiB sent/scrape | KiB line protocol/scrape | writes rejected | scrapes failed |")
		fmt.Fprintln(w, "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, r := range rows {
			fmt.Fprintf(w, "| %d | %s | %s | %d | %.0f | %.3f | %.3f | %s | %s | %.1f | %.1f + %.1f | %.0f | %.0f | %.1f | %.1f | %d | %d |\n",
				r.Services, r.Tool, r.Format, r.Samples, r.Scrapes, r.CPUPerM, r.TotalCPUPerM, fmtDur(r.CPUPerScrape), fmtDur(r.TotalCPU),
				mib(r.PeakRSS), mib(r.EndAnon), mib(r.EndFile), r.LinesPerScrape, r.FieldsPerScrape, r.WirePerScrape/1024, r.RawPerScrape/1024, r.Rejected, r.FailedScrapes)
		}
		printRatios(w, rows)
	}
	if len(sides) > 0 {
		fmt.Fprintf(w, "\n### As a sidecar\n\n")
		fmt.Fprintln(w, "| tool | round | services | interval | scrapes | window | CPU in window | share of one core | RSS MiB (anon + file) | peak RSS MiB | largest sample MiB (anon + file), at | lines received |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, side := range sides {
			fmt.Fprintf(w, "| %s | %d | %d | %s | %d | %s | %s | %.3f %% | %.1f (%.1f + %.1f) | %.1f | %.1f (%.1f + %.1f), %s | %d |\n",
				side.Tool, side.Round, side.Services, side.Interval, side.Scrapes, side.Window.Round(time.Second), fmtDur(side.WindowCPU),
				100*side.coreShare(), mib(side.RSS), mib(side.RSSAnon), mib(side.RSSFile), mib(side.PeakRSS),
				mib(side.Mem.Max.RSS), mib(side.Mem.Max.Anon), mib(side.Mem.Max.File), side.Mem.MaxAt.Round(100*time.Millisecond),
				side.Writes.Lines)
		}
		fmt.Fprintln(w, "\nPeak RSS is the kernel's VmHWM; the largest sample is /proc/PID/status read every 10 ms, to say of what the peak was and when (from the start).")
	}
}

func printRatios(w io.Writer, rows []row) {
	find := func(tool string, n int) *row {
		for i := range rows {
			if rows[i].Tool == tool && rows[i].Services == n {
				return &rows[i]
			}
		}
		return nil
	}
	var lines []string
	for _, r := range rows {
		if r.Tool == toolTelegraf {
			continue
		}
		tg := find(toolTelegraf, r.Services)
		if tg == nil || tg.CPUPerM == 0 || tg.PeakRSS == 0 || tg.WirePerScrape == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("| %d | %s | %.3f (1/%.1f) | %.3f (1/%.1f) | %.3f (1/%.1f) | %.3f |",
			r.Services, r.Tool,
			r.CPUPerM/tg.CPUPerM, tg.CPUPerM/r.CPUPerM,
			r.TotalCPUPerM/tg.TotalCPUPerM, tg.TotalCPUPerM/r.TotalCPUPerM,
			float64(r.PeakRSS)/float64(tg.PeakRSS), float64(tg.PeakRSS)/float64(r.PeakRSS),
			r.WirePerScrape/tg.WirePerScrape))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### Bridge / Telegraf\n\n")
	fmt.Fprintln(w, "| services | bridge run | CPU per sample (steady) | CPU per sample (whole run) | peak RSS | bytes sent |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// verdict is one target of issue 5 and whether this run met it.
type verdict struct {
	Target string
	Value  string
	Met    bool
}

func targets(rows []row, sides []sidecarResult) []verdict {
	var vs []verdict
	get := func(tool string, n int) *row {
		for i := range rows {
			if rows[i].Tool == tool && rows[i].Services == n {
				return &rows[i]
			}
		}
		return nil
	}
	for _, n := range []int{100, 500} {
		tg := get(toolTelegraf, n)
		for _, name := range []string{toolBridge, toolBridgeShipped, toolBridgeTelegraf} {
			b := get(name, n)
			if b == nil || tg == nil || tg.CPUPerM == 0 {
				continue
			}
			ratio := b.CPUPerM / tg.CPUPerM
			vs = append(vs, verdict{
				Target: fmt.Sprintf("%s CPU per sample <= 1/5 of Telegraf's at %d services", name, n),
				Value:  fmt.Sprintf("1/%.1f", 1/ratio), Met: ratio <= 0.2,
			})
		}
	}
	if tg := get(toolTelegraf, 100); tg != nil && tg.PeakRSS > 0 {
		for _, name := range []string{toolBridge, toolBridgeShipped, toolBridgeTelegraf} {
			if b := get(name, 100); b != nil {
				ratio := float64(b.PeakRSS) / float64(tg.PeakRSS)
				vs = append(vs, verdict{
					Target: fmt.Sprintf("%s peak RSS <= 1/4 of Telegraf's at 100 services", name),
					Value:  fmt.Sprintf("%.1f MiB vs %.1f MiB (1/%.1f)", mib(b.PeakRSS), mib(tg.PeakRSS), 1/ratio), Met: ratio <= 0.25,
				})
			}
		}
	}
	for _, name := range []string{toolBridge, toolBridgeShipped, toolBridgeTelegraf} {
		if b := get(name, 500); b != nil {
			vs = append(vs, verdict{
				Target: fmt.Sprintf("%s: a 500-service page in < 0.5 s CPU", name),
				Value:  fmtDur(b.CPUPerScrape) + " per scrape", Met: b.CPUPerScrape < 500*time.Millisecond,
			})
		}
	}
	return append(vs, sidecarVerdicts(sides)...)
}

// sidecarVerdicts judges each tool's sidecar runs together: the median
// share of a core (one run decides nothing near the 0.2 % line), shown with
// the mean over all the runs, and the highest peak RSS.
func sidecarVerdicts(sides []sidecarResult) []verdict {
	var vs []verdict
	for _, name := range []string{toolBridge, toolBridgeShipped} {
		var shares []float64
		var runs []string
		var peak, rss int64
		var cpu, window time.Duration
		var side sidecarResult
		for _, s := range sides {
			if s.Tool != name {
				continue
			}
			side = s
			shares = append(shares, s.coreShare())
			runs = append(runs, fmt.Sprintf("%.3f", 100*s.coreShare()))
			peak, rss = max(peak, s.PeakRSS), max(rss, s.RSS)
			cpu, window = cpu+s.WindowCPU, window+s.Window
		}
		if len(shares) == 0 {
			continue
		}
		share := median(shares)
		value := fmt.Sprintf("%.3f %%", 100*share)
		if len(shares) > 1 {
			// The mean is the share over all the runs' windows together;
			// the target is judged on the median.
			value = fmt.Sprintf("median %.3f %%, mean %.3f %% (runs: %s %%)", 100*share, 100*cpu.Seconds()/window.Seconds(), strings.Join(runs, ", "))
		}
		vs = append(vs,
			verdict{Target: fmt.Sprintf("%s sidecar (%d services, %s): < 0.2 %% of one core", name, side.Services, side.Interval),
				Value: value, Met: share < 0.002},
			verdict{Target: name + " sidecar: < 20 MiB RSS",
				Value: fmt.Sprintf("%.1f MiB (highest peak %.1f MiB)", mib(rss), mib(peak)), Met: peak < 20<<20},
		)
	}
	return vs
}

func printVerdicts(w io.Writer, vs []verdict) {
	if len(vs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### Targets\n\n| target | this run | met |\n|---|---:|---|\n")
	for _, v := range vs {
		met := "yes"
		if !v.Met {
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", v.Target, v.Value, met)
	}
}

// smokeOK checks that every tool delivered something, compressed as asked,
// and that nothing was refused.
func smokeOK(w io.Writer, rs []result, gzipOut bool) bool {
	ok := true
	for _, r := range rs {
		var problems []string
		if r.Writes.Lines == 0 {
			problems = append(problems, "no lines received")
		}
		if r.Writes.Rejected > 0 {
			problems = append(problems, fmt.Sprintf("%d writes rejected", r.Writes.Rejected))
		}
		if gzipOut && r.Writes.Gzipped != r.Writes.Requests {
			problems = append(problems, fmt.Sprintf("%d of %d writes not gzipped", r.Writes.Requests-r.Writes.Gzipped, r.Writes.Requests))
		}
		if r.FailedScrapes > 0 {
			problems = append(problems, fmt.Sprintf("%d scrapes failed (see the log)", r.FailedScrapes))
		}
		if r.Usage.ExitErr != "" {
			problems = append(problems, "exit: "+r.Usage.ExitErr)
		}
		if len(problems) > 0 {
			ok = false
			fmt.Fprintf(w, "SMOKE FAIL %s: %s\n", r.Tool, strings.Join(problems, "; "))
		}
	}
	// The telegraf schema promises Telegraf's output shape: per scrape, the
	// same number of lines and fields as Telegraf itself.
	perScrape := map[string][2]float64{}
	for _, r := range rs {
		if r.Scrapes > 0 {
			perScrape[r.Tool] = [2]float64{float64(r.Writes.Lines) / float64(r.Scrapes), float64(r.Writes.Fields) / float64(r.Scrapes)}
		}
	}
	b, okB := perScrape[toolBridgeTelegraf]
	tg, okT := perScrape[toolTelegraf]
	if okB && okT && (math.Abs(b[0]-tg[0]) > 0.01*tg[0] || math.Abs(b[1]-tg[1]) > 0.01*tg[1]) {
		ok = false
		fmt.Fprintf(w, "SMOKE FAIL bridge-telegraf sends %.0f lines and %.0f fields per scrape, Telegraf %.0f and %.0f\n", b[0], b[1], tg[0], tg[1])
	}
	if ok {
		fmt.Fprintln(w, "\nsmoke: ok")
	}
	return ok
}

func printMachine(w io.Writer) {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	var mem string
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(b), "\n", 2)[0] + " x")[1]
	}
	var load string
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	fmt.Fprintf(w, "Machine: %s, %d CPUs, MemTotal %s kB, %s/%s, %s; load average %s; %s UTC\n",
		model, runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH, runtime.Version(), load, time.Now().UTC().Format(time.DateTime))
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}
