package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
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
	// see a moment before the handler returns.
	require.Eventually(t, func() bool { return len(ps.served()) == 2 }, 5*time.Second, time.Millisecond)
	served := ps.served()
	require.True(t, served[0].Gzipped)
	require.False(t, served[1].Gzipped)

	all, traefik := countSamples(first)
	require.Positive(t, traefik)
	require.GreaterOrEqual(t, all, traefik)
}
