package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/syncbuf"
)

// fakeTraefik serves the pages in order, then the last one for ever, like a
// Traefik whose traffic stopped after the last page.
type fakeTraefik struct {
	*httptest.Server
	hits atomic.Int64
}

func newFakeTraefik(t *testing.T, files ...string) *fakeTraefik {
	t.Helper()
	var pages [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		pages = append(pages, b)
	}
	ft := &fakeTraefik{}
	ft.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := min(int(ft.hits.Add(1))-1, len(pages)-1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(pages[i])
	}))
	t.Cleanup(ft.Close)
	return ft
}

func (ft *fakeTraefik) metricsURL() string { return ft.URL + "/metrics" }

var scrapes = []string{"testdata/traefik-scrape-1.prom", "testdata/traefik-scrape-2.prom"}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// bridgeProc is the real binary running against srv.
type bridgeProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan error
}

// bridgeConfig is a fast configuration: 200ms scrapes, ms precision.
func bridgeConfig(t *testing.T, traefikURL string, srv *influxtest.Server, extra string) string {
	t.Helper()
	return writeFile(t, "bridge.yaml", fmt.Sprintf(`traefik:
  urls: [%s]
  interval: 200ms
  timeout: 150ms
influxdb:
  url: %s
  database: smoke
  username: %s
  precision: ms
  tls:
    ca_file: %s
host_tag: host
instance_tag: ""
tags:
  env: test
%s`, traefikURL, srv.URL, srv.Username, srv.CAFile, extra))
}

func startBridge(t *testing.T, cfgFile string, srv *influxtest.Server) *bridgeProc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), "--config", cfgFile, "--listen", addr)
	cmd.Env = append(cleanEnviron(), "TIB_INFLUXDB_PASSWORD="+srv.Password)
	p := &bridgeProc{cmd: cmd, url: "http://" + addr, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("bridge stderr:\n%s", p.stderr)
		}
	})
	return p
}

// terminate sends SIGTERM and returns the exit code.
func (p *bridgeProc) terminate(t *testing.T) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(30 * time.Second):
		t.Fatal("bridge did not exit within 30s of SIGTERM")
		return -1
	}
}

// syncBuffer captures logs written by other goroutines while the test reads them.
type syncBuffer = syncbuf.Buffer

// eventually polls cond every 50ms until it holds or the deadline passes: the
// wait is for a condition, not a guess at how long something takes.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error: %v)", what, within, lastErr)
		}
		<-tick.C
	}
}

// get returns the status and body of url.
func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// querySum runs a SELECT sum(...) and returns the single number, or ok=false
// while there is no answer yet.
func querySum(ctx context.Context, srv *influxtest.Server, q string) (float64, bool, error) {
	series, err := srv.Query(ctx, "smoke", q)
	if err != nil || len(series) == 0 || len(series[0].Values) == 0 {
		return 0, false, err
	}
	n, ok := series[0].Values[0][1].(json.Number)
	if !ok {
		return 0, false, fmt.Errorf("not a number: %#v", series[0].Values[0][1])
	}
	f, err := n.Float64()
	return f, err == nil, err
}

// The fixture's README: from scrape-1 to scrape-2 this counter went from 36
// to 56, an increase of 20, and the later pages repeat scrape-2 (no increase).
const apiSvc404 = `SELECT sum("count") FROM "traefik.service.requests.total" WHERE "service" = 'api-svc@file' AND "code" = '404' AND "method" = 'GET'`

func TestBridgeEndToEnd(t *testing.T) {
	srv := influxtest.Start(t)
	ft := newFakeTraefik(t, scrapes...)
	p := startBridge(t, bridgeConfig(t, ft.metricsURL(), srv, ""), srv)
	ctx := t.Context()

	eventually(t, 30*time.Second, "the delta of scrape-2 in InfluxDB", func() (bool, error) {
		v, ok, err := querySum(ctx, srv, apiSvc404)
		return ok && v == 20, err
	})
	eventually(t, 30*time.Second, "/readyz 200", func() (bool, error) {
		code, _, err := get(p.url + "/readyz")
		return code == 200, err
	})
	code, body, err := get(p.url + "/healthz")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	code, body, err = get(p.url + "/metrics")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	require.Contains(t, body, "traefik_influxdb_bridge_points_written_total ")
	require.Contains(t, body, "go_goroutines ")
	require.NotContains(t, body, srv.Password)

	// Self metrics arrive in the same database, tagged like the rest.
	eventually(t, 30*time.Second, "self metrics in InfluxDB", func() (bool, error) {
		series, err := srv.Query(ctx, "smoke", `SELECT last("value") FROM "traefik_influxdb_bridge_points_written_total" WHERE "env" = 'test'`)
		return err == nil && len(series) == 1, err
	})

	require.Equal(t, 0, p.terminate(t))
	// Still 20 after the stop: nothing was written twice with new timestamps.
	v, ok, err := querySum(ctx, srv, apiSvc404)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 20.0, v)
	require.NotContains(t, p.stderr.String(), srv.Password)
	require.Contains(t, p.stderr.String(), "buffer flushed")
}

func TestBridgeFlushesOnSIGTERM(t *testing.T) {
	srv := influxtest.Start(t)
	ft := newFakeTraefik(t, scrapes...)
	require.NoError(t, srv.Stop())
	// A failed write waits an hour before it is tried again, so only the
	// shutdown flush can bring the buffered points to InfluxDB.
	cfg := bridgeConfig(t, ft.metricsURL(), srv, "retry:\n  min_backoff: 1h\n  max_backoff: 1h\nshutdown_grace: 20s\n")
	p := startBridge(t, cfg, srv)

	eventually(t, 30*time.Second, "scrape-2 buffered while InfluxDB is down", func() (bool, error) {
		_, body, err := get(p.url + "/metrics")
		return ft.hits.Load() >= 3 && metricValue(body, "traefik_influxdb_bridge_buffer_lines") > 0, err
	})
	code, body, err := get(p.url + "/readyz")
	require.NoError(t, err)
	require.Equal(t, 503, code, body)

	require.NoError(t, srv.StartAgain(t.Context()))
	require.Equal(t, 0, p.terminate(t))
	v, ok, err := querySum(t.Context(), srv, apiSvc404)
	require.NoError(t, err)
	require.True(t, ok, "nothing written: the flush did not happen")
	require.Equal(t, 20.0, v)
	require.Contains(t, p.stderr.String(), "buffer flushed")
}

// metricValue reads an unlabelled sample from a Prometheus text page, or -1.
func metricValue(page, name string) float64 {
	for line := range strings.SplitSeq(page, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

func TestOnceAllSchemas(t *testing.T) {
	// Expected lines checked by hand against testdata: api-svc@file's 404 GET
	// counter is 36 in scrape-1 and 56 in scrape-2.
	tests := []struct {
		schema string
		want   func(url string) string
	}{
		{schema: "traefik", want: func(string) string {
			return "traefik.service.requests.total,code=404,method=GET,protocol=http,service=api-svc@file count=20 "
		}},
		{schema: "prometheus", want: func(string) string {
			return "traefik_service_requests_total,code=404,method=GET,protocol=http,service=api-svc@file value=36 "
		}},
		{schema: "telegraf", want: func(url string) string {
			return "traefik_service_requests_total,code=404,method=GET,protocol=http,service=api-svc@file,url=" + url + " counter=36 "
		}},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			ft := newFakeTraefik(t, scrapes...)
			cfg := writeFile(t, "c.yaml", fmt.Sprintf("traefik:\n  urls: [%s]\n  interval: 200ms\n  timeout: 150ms\ninfluxdb:\n  precision: ms\nhost_tag: \"\"\ninstance_tag: \"\"\nschema: %s\n", ft.metricsURL(), tt.schema))
			cmd := exec.Command(binary(t), "--config", cfg, "--once")
			cmd.Env = cleanEnviron()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			require.NoError(t, cmd.Run(), "stderr: %s", &stderr)
			require.Contains(t, stdout.String(), tt.want(ft.metricsURL()))
			for line := range strings.SplitSeq(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
				require.NotEmpty(t, line)
				require.False(t, strings.HasPrefix(line, "traefik_influxdb_bridge"), "no self metrics in --once: %s", line)
			}
		})
	}
}

func TestBridgeDiskBufferSurvivesRestart(t *testing.T) {
	srv := influxtest.Start(t)
	require.NoError(t, srv.Stop())
	dir := t.TempDir()
	// InfluxDB stays down through the first run, whose flush cannot succeed.
	extra := fmt.Sprintf("buffer:\n  dir: %s\nshutdown_grace: 300ms\nself_metrics:\n  write: false\n", dir)

	ft1 := newFakeTraefik(t, scrapes...)
	first := startBridge(t, bridgeConfig(t, ft1.metricsURL(), srv, extra+"retry:\n  min_backoff: 1h\n  max_backoff: 1h\n"), srv)
	eventually(t, 30*time.Second, "scrape-2 buffered on disk", func() (bool, error) {
		_, body, err := get(first.url + "/metrics")
		return ft1.hits.Load() >= 3 && metricValue(body, "traefik_influxdb_bridge_buffer_lines") > 0, err
	})
	require.Equal(t, 0, first.terminate(t))
	require.Contains(t, first.stderr.String(), "it stays on disk for the next start")

	// The second run sees only scrape-2, its baseline: the 20 can come only
	// from what the first run left on disk.
	require.NoError(t, srv.StartAgain(t.Context()))
	ft2 := newFakeTraefik(t, scrapes[1])
	second := startBridge(t, bridgeConfig(t, ft2.metricsURL(), srv, extra), srv)
	eventually(t, 30*time.Second, "the first run's points in InfluxDB", func() (bool, error) {
		v, ok, err := querySum(t.Context(), srv, apiSvc404)
		return ok && v == 20, err
	})
	require.Equal(t, 0, second.terminate(t))
}

// TestBridgeDiskBufferContinuesCounters restarts the bridge between two
// scrapes of the same Traefik: with buffer.dir the second run continues the
// first run's counters, so the increase Traefik counted while the bridge was
// stopped reaches InfluxDB once. Without the saved state the second run's
// first scrape would be a baseline and the sum 0.
func TestBridgeDiskBufferContinuesCounters(t *testing.T) {
	srv := influxtest.Start(t)
	pages := make([][]byte, len(scrapes))
	for i, f := range scrapes {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		pages[i] = b
	}
	var page atomic.Int64
	var hits atomic.Int64
	ft := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(pages[page.Load()])
	}))
	t.Cleanup(ft.Close)
	extra := fmt.Sprintf("buffer:\n  dir: %s\nself_metrics:\n  write: false\nbatch:\n  max_lines: 7\n", t.TempDir())
	cfg := bridgeConfig(t, ft.URL+"/metrics", srv, extra)

	first := startBridge(t, cfg, srv)
	eventually(t, 30*time.Second, "scrape-1 read a few times", func() (bool, error) { return hits.Load() >= 3, nil })
	require.Equal(t, 0, first.terminate(t))
	v, _, err := querySum(t.Context(), srv, apiSvc404)
	require.NoError(t, err)
	require.Zero(t, v, "the first run saw no increase")

	page.Store(1)
	second := startBridge(t, cfg, srv)
	eventually(t, 30*time.Second, "the increase across the restart in InfluxDB", func() (bool, error) {
		v, ok, err := querySum(t.Context(), srv, apiSvc404)
		return ok && v == 20, err
	})
	require.Equal(t, 0, second.terminate(t))
	v, _, err = querySum(t.Context(), srv, apiSvc404)
	require.NoError(t, err)
	require.Equal(t, 20.0, v, "counted once")
	require.Contains(t, second.stderr.String(), "counter state restored")
}

func TestOnceLogsJSONAndWarnsInsecure(t *testing.T) {
	ft := newFakeTraefik(t, scrapes...)
	cfg := writeFile(t, "c.yaml", fmt.Sprintf("traefik:\n  urls: [%s]\n  interval: 200ms\n  timeout: 150ms\n  tls:\n    insecure_skip_verify: true\ninfluxdb:\n  precision: ms\nschema: prometheus\nlog:\n  format: json\n", ft.metricsURL()))
	cmd := exec.Command(binary(t), "--config", cfg, "--once")
	cmd.Env = cleanEnviron()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", &stderr)
	require.NotEmpty(t, stdout.String())

	var warned bool
	for line := range strings.SplitSeq(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not a JSON log line: %s", line)
		if rec["level"] == "WARN" && strings.Contains(fmt.Sprint(rec["msg"]), "traefik.tls.insecure_skip_verify") {
			warned = true
		}
	}
	require.True(t, warned, "no warning about insecure_skip_verify in:\n%s", &stderr)
}

func TestSecondSignalEndsTheFlush(t *testing.T) {
	ft := newFakeTraefik(t, scrapes...)
	closed := freeAddr(t) // nothing listens: every write fails
	cfg := writeFile(t, "c.yaml", fmt.Sprintf("traefik:\n  urls: [%s]\n  interval: 200ms\n  timeout: 150ms\ninfluxdb:\n  url: http://%s\n  precision: ms\nshutdown_grace: 1h\n", ft.metricsURL(), closed))
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), "--config", cfg, "--listen", addr)
	cmd.Env = cleanEnviron()
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	eventually(t, 30*time.Second, "points waiting in the buffer", func() (bool, error) {
		_, body, err := get("http://" + addr + "/metrics")
		return metricValue(body, "traefik_influxdb_bridge_buffer_lines") > 0, err
	})
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	eventually(t, 30*time.Second, "the final flush under way", func() (bool, error) {
		return strings.Contains(stderr.String(), "flushing the buffer"), nil
	})
	select {
	case err := <-done:
		t.Fatalf("exited during a 1h grace with InfluxDB unreachable: %v\n%s", err, stderr)
	default:
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		done <- err
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		ws, ok := ee.Sys().(syscall.WaitStatus)
		require.True(t, ok)
		require.True(t, ws.Signaled(), "want death by the second signal, got %v", err)
		require.Equal(t, syscall.SIGTERM, ws.Signal())
	case <-time.After(30 * time.Second):
		t.Fatal("the second SIGTERM did not end the process")
	}
}

// TestBridgeFlushesHeldSnapshot: with the disk buffer, a self-metrics
// snapshot held back for the next scrape's fsync (none comes: Traefik is
// down) still goes out in the shutdown flush, which would otherwise wait
// out shutdown_grace for it.
func TestBridgeFlushesHeldSnapshot(t *testing.T) {
	srv := influxtest.Start(t)
	extra := fmt.Sprintf("buffer:\n  dir: %s\nshutdown_grace: 20s\n", t.TempDir())
	cfg := bridgeConfig(t, "http://"+freeAddr(t)+"/metrics", srv, extra)
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	// Snapshots 3 s apart: the first is held back until the second.
	require.NoError(t, os.WriteFile(cfg, bytes.Replace(b, []byte("interval: 200ms"), []byte("interval: 3s"), 1), 0o600))
	p := startBridge(t, cfg, srv)
	eventually(t, 30*time.Second, "a snapshot held back", func() (bool, error) {
		_, body, err := get(p.url + "/metrics")
		return metricValue(body, "traefik_influxdb_bridge_buffer_lines") > 0, err
	})
	start := time.Now()
	require.Equal(t, 0, p.terminate(t))
	require.Less(t, time.Since(start), 10*time.Second, "the flush waited for the snapshot")
	require.Contains(t, p.stderr.String(), "buffer flushed")
	series, err := srv.Query(t.Context(), "smoke", `SELECT count("value") FROM "traefik_influxdb_bridge_build_info"`)
	require.NoError(t, err)
	require.Len(t, series, 1, "the snapshot is in InfluxDB")
}
