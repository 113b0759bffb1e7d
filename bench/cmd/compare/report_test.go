package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, 0},
		{"one", []float64{3}, 3},
		{"odd", []float64{9, 1, 5}, 5},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, median(tt.in))
		})
	}
}

func TestSummarizeTakesMediansPerToolAndSize(t *testing.T) {
	mk := func(tool string, n int, cpu time.Duration, rss int64) result {
		return result{Tool: tool, Services: n, SamplesPerScrape: 1000, Scrapes: 10, SteadyCPU: cpu, PeakRSS: rss,
			Writes: writeCounts{Lines: 500, WireBytes: 2000}}
	}
	rows := summarize([]result{
		mk("telegraf", 100, 10*time.Millisecond, 300),
		mk("bridge", 100, 1*time.Millisecond, 30),
		mk("telegraf", 100, 30*time.Millisecond, 100),
		mk("bridge", 20, 5*time.Millisecond, 10),
		mk("telegraf", 100, 20*time.Millisecond, 200),
	})
	require.Len(t, rows, 3)
	require.Equal(t, 20, rows[0].Services, "sizes in ascending order")
	tg := rows[2]
	require.Equal(t, "telegraf", tg.Tool)
	require.Equal(t, 3, tg.Rounds)
	require.Equal(t, int64(200), tg.PeakRSS)
	require.InDelta(t, 20.0, tg.CPUPerM, 1e-9, "20 ms per 1000 samples is 20 s per million")
	require.InDelta(t, 50.0, tg.LinesPerScrape, 1e-9)
	require.InDelta(t, 200.0, tg.WirePerScrape, 1e-9)
}

func TestPageServerServesPagesInOrderGzippedWhenAsked(t *testing.T) {
	book := newPageBook(2, true)
	ps := &pageServer{}
	ps.reset(book, nil)
	srv := httptest.NewServer(ps)
	defer srv.Close()

	get := func(gz bool) []byte {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		require.NoError(t, err)
		tr := &http.Transport{DisableCompression: true}
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		if gz {
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			zr, err := gzip.NewReader(bytes.NewReader(body))
			require.NoError(t, err)
			body, err = io.ReadAll(zr)
			require.NoError(t, err)
		}
		return body
	}
	first, second := get(true), get(false)
	require.Equal(t, book.get(0).raw, first)
	require.Equal(t, book.get(1).raw, second)
	require.NotEqual(t, first, second, "counters grow between scrapes")

	// A scrape is recorded once its body is written, which the client can
	// see a moment before the handler returns: the second request can be
	// recorded before the first, so they are put back in page order.
	require.Eventually(t, func() bool { return len(ps.served()) == 2 }, 5*time.Second, time.Millisecond)
	served := ps.served()
	slices.SortFunc(served, func(a, b scrape) int { return cmp.Compare(a.Round, b.Round) })
	require.Equal(t, []int{0, 1}, []int{served[0].Round, served[1].Round})
	require.True(t, served[0].Gzipped)
	require.False(t, served[1].Gzipped)

	all, traefik := countSamples(first)
	require.Positive(t, traefik)
	require.GreaterOrEqual(t, all, traefik)
}

func TestSidecarVerdictsTakeTheMedianShareAndTheHighestPeak(t *testing.T) {
	run := func(tool string, cpu time.Duration, peak int64) sidecarResult {
		return sidecarResult{Tool: tool, Services: 20, Interval: 10 * time.Second, Window: 100 * time.Second, WindowCPU: cpu, PeakRSS: peak, RSS: peak}
	}
	vs := sidecarVerdicts([]sidecarResult{
		run(toolBridge, 150*time.Millisecond, 18<<20), // 0.15 %
		run(toolBridgeShipped, 190*time.Millisecond, 19<<20),
		run(toolBridge, 250*time.Millisecond, 19<<20), // 0.25 %
		run(toolBridgeShipped, 195*time.Millisecond, 21<<20),
		run(toolBridge, 210*time.Millisecond, 18<<20), // 0.21 %: the median
		run(toolTelegraf, 10*time.Millisecond, 1<<20), // not judged
	})
	require.Len(t, vs, 4)
	require.Equal(t, "median 0.210 %, mean 0.203 % (runs: 0.150, 0.250, 0.210 %)", vs[0].Value)
	require.False(t, vs[0].Met, "the median run is over 0.2 %")
	require.True(t, vs[1].Met, "every bridge run peaked under 20 MiB")
	require.True(t, vs[2].Met, "bridge-shipped's median share, 0.1925 %, is under 0.2 %")
	require.False(t, vs[3].Met, "one bridge-shipped run peaked at 21 MiB")
}
