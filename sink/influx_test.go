package sink

// Tests against a real influxd (internal/influxtest): HTTPS with its own CA,
// authentication on. They skip without influxd unless TIB_REQUIRE_REAL=1.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
)

// realConfig aims a config at srv as its admin.
func realConfig(srv *influxtest.Server) *config.Config {
	cfg := testConfig(srv.URL)
	cfg.InfluxDB.Username = srv.Username
	cfg.InfluxDB.Password = config.Secret(srv.Password)
	cfg.InfluxDB.TLS.CAFile = srv.CAFile
	return cfg
}

// rows runs q and returns every row of every series as "name tags: v1 v2 …".
func rows(t *testing.T, srv *influxtest.Server, q string) []string {
	t.Helper()
	series, err := srv.Query(t.Context(), "tib", q)
	require.NoError(t, err)
	var out []string
	for _, s := range series {
		var tags []string
		for k, v := range s.Tags {
			tags = append(tags, k+"="+v)
		}
		for _, r := range s.Values {
			out = append(out, fmt.Sprintf("%s %s: %v", s.Name, strings.Join(tags, ","), r))
		}
	}
	return out
}

// flushFor flushes for at most d, so a sink that retries for ever fails the
// test instead of hanging it; it returns Flush's error.
func flushFor(h *harness, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return h.sink.Flush(ctx)
}

func TestWriteAndReadBack(t *testing.T) {
	srv := influxtest.Start(t)
	// Each end of influxdb.gzip_level's range, as the fast levels and 7-9
	// take different paths through the compressor.
	tests := []struct {
		name  string
		gzip  bool
		level int
	}{{"gzip", true, 5}, {"gzip level 6", true, 6}, {"gzip level 1", true, 1}, {"gzip level 9", true, 9}, {"plain", false, 5}}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := realConfig(srv)
			cfg.InfluxDB.Gzip = tt.gzip
			cfg.InfluxDB.GzipLevel = tt.level
			cfg.Batch.MaxLines = 2 // one batch per record: records are not split
			h := newHarness(t, cfg)
			ts := 1700000000 + i*100
			h.appendLines(t,
				fmt.Sprintf("traefik.service.requests.total,code=200,method=GET,protocol=http,service=api count=3 %d", ts),
				fmt.Sprintf("traefik.service.requests.total,code=500,method=GET,protocol=http,service=api count=1.5 %d", ts))
			h.appendLines(t,
				fmt.Sprintf("traefik.service.request.duration,code=200,method=GET,protocol=http,service=api p50=0.1,p99=1 %d", ts),
				fmt.Sprintf("traefik.service.requests.total,code=200,method=GET,protocol=http,service=api count=2 %d", ts+10),
				fmt.Sprintf(`traefik.service.server.up,service=api,url=http://10.0.0.1:80 value=1 %d`, ts))
			require.NoError(t, flushFor(h, 20*time.Second))
			require.NoError(t, h.sink.Ready())

			// Database created on the first write (create_database is on by default).
			where := fmt.Sprintf(`WHERE time >= %ds AND time < %ds`, ts, ts+100)
			require.Equal(t, []string{
				fmt.Sprintf("traefik.service.requests.total code=200: [%s 3]", rfc(ts)),
				fmt.Sprintf("traefik.service.requests.total code=200: [%s 2]", rfc(ts+10)),
				fmt.Sprintf("traefik.service.requests.total code=500: [%s 1.5]", rfc(ts)),
			}, rows(t, srv, `SELECT "count" FROM "traefik.service.requests.total" `+where+` GROUP BY "code"`))
			require.Equal(t, []string{fmt.Sprintf("traefik.service.request.duration : [%s 0.1 1]", rfc(ts))},
				rows(t, srv, `SELECT "p50","p99" FROM "traefik.service.request.duration" `+where))
			require.Equal(t, []string{fmt.Sprintf("traefik.service.server.up : [%s api http://10.0.0.1:80 1]", rfc(ts))},
				rows(t, srv, `SELECT "service","url","value" FROM "traefik.service.server.up" `+where))

			// Floats stay floats: count=3 was not taken for an integer.
			for m, want := range map[string]map[string]string{
				"traefik.service.requests.total":   {"count": "float"},
				"traefik.service.request.duration": {"p50": "float", "p99": "float"},
				"traefik.service.server.up":        {"value": "float"},
			} {
				got, err := srv.FieldTypes(t.Context(), "tib", m)
				require.NoError(t, err)
				require.Equal(t, want, got, m)
			}
			require.Equal(t, 5.0, h.metric(t, "traefik_influxdb_bridge_points_written_total"))
			require.Equal(t, 2.0, h.metric(t, "traefik_influxdb_bridge_writes_total", "status_class", "2xx"))
			require.Equal(t, 1.0, h.metric(t, "traefik_influxdb_bridge_influxdb_up"))
			require.Zero(t, h.q.Stats().Lines)
		})
	}
}

func rfc(unix int) string { return time.Unix(int64(unix), 0).UTC().Format(time.RFC3339) }

func TestCredentialsRefused(t *testing.T) {
	srv := influxtest.Start(t)
	require.NoError(t, srv.CreateDatabase(t.Context(), "tib"))
	tests := []struct {
		name    string
		user    string
		setup   func(t *testing.T) // before the writes: makes the credentials fail
		fix     func(t *testing.T) // then: makes them work
		wantLog string
	}{
		{
			name: "wrong password 401", user: "nobody",
			setup: func(*testing.T) {},
			fix: func(t *testing.T) {
				require.NoError(t, srv.CreateUser(t.Context(), "nobody", "pw-of-the-bridge", map[string]string{"tib": "WRITE"}))
			},
			wantLog: "401",
		},
		{
			name: "no write privilege 403", user: "reader",
			setup: func(t *testing.T) {
				require.NoError(t, srv.CreateUser(t.Context(), "reader", "pw-of-the-bridge", map[string]string{"tib": "READ"}))
			},
			fix: func(t *testing.T) {
				require.NoError(t, srv.Exec(t.Context(), `GRANT WRITE ON "tib" TO "reader"`))
			},
			wantLog: "403",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup(t)
			cfg := realConfig(srv)
			cfg.InfluxDB.Username, cfg.InfluxDB.Password = tt.user, "pw-of-the-bridge"
			h := newHarness(t, cfg)
			m := fmt.Sprintf("auth%d", i)
			h.appendLines(t, m+" v=1 1700000000", m+" v=2 1700000001")

			err := flushFor(h, time.Second)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Contains(t, err.Error(), "2 lines not written")
			require.Equal(t, int64(2), h.q.Stats().Lines, "kept")
			require.GreaterOrEqual(t, h.metric(t, "traefik_influxdb_bridge_writes_total", "status_class", "4xx"), 2.0)
			require.GreaterOrEqual(t, h.metric(t, "traefik_influxdb_bridge_retries_total"), 1.0)
			require.Zero(t, h.metric(t, "traefik_influxdb_bridge_points_dropped_total", "reason", "rejected"))
			require.Equal(t, 0.0, h.metric(t, "traefik_influxdb_bridge_influxdb_up"))
			errs := h.logs.find(slog.LevelError, "check influxdb.username")
			require.Len(t, errs, 1, "one actionable error per change of state:\n"+h.logs.all())
			require.Contains(t, errs[0].Attrs, tt.wantLog)
			ready := h.sink.Ready()
			require.Error(t, ready)

			// The password shows nowhere.
			page := string(metrics.AppendText(nil, h.reg.Gather()))
			require.Contains(t, page, "traefik_influxdb_bridge_influxdb_up 0\n")
			for name, text := range map[string]string{"logs": h.logs.all(), "flush error": err.Error(), "ready": ready.Error(), "metrics": page} {
				require.NotContains(t, text, "pw-of-the-bridge", name)
			}

			tt.fix(t)
			require.NoError(t, flushFor(h, 20*time.Second), "nothing lost once the credentials work")
			require.Equal(t, []string{
				m + " : [2023-11-14T22:13:20Z 1]",
				m + " : [2023-11-14T22:13:21Z 2]",
			}, rows(t, srv, `SELECT "v" FROM "`+m+`"`))
			require.Len(t, h.logs.find(slog.LevelInfo, "answering again"), 1)
		})
	}
}

func TestMissingDatabase(t *testing.T) {
	srv := influxtest.Start(t)
	tests := []struct {
		name   string
		create bool
	}{{"created when allowed", true}, {"kept when not allowed", false}}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := realConfig(srv)
			cfg.InfluxDB.Database = fmt.Sprintf("missing%d", i)
			cfg.InfluxDB.CreateDatabase = tt.create
			h := newHarness(t, cfg)
			h.appendLines(t, "m v=1 1700000000")
			if !tt.create {
				require.Error(t, flushFor(h, 500*time.Millisecond))
				require.Equal(t, int64(1), h.q.Stats().Lines)
				require.Len(t, h.logs.find(slog.LevelError, "database does not exist"), 1, h.logs.all())
				require.NoError(t, srv.CreateDatabase(t.Context(), cfg.InfluxDB.Database))
			}
			require.NoError(t, flushFor(h, 20*time.Second))
			series, err := srv.Query(t.Context(), cfg.InfluxDB.Database, `SELECT "v" FROM "m"`)
			require.NoError(t, err)
			require.Len(t, series, 1)
			require.Len(t, series[0].Values, 1)
			if tt.create {
				require.Len(t, h.logs.find(slog.LevelInfo, "created the influxdb database"), 1)
				require.Empty(t, h.logs.find(slog.LevelError, ""), "creating the database is no failure:\n"+h.logs.all())
			}
		})
	}
}

func TestRefusedLines(t *testing.T) {
	srv := influxtest.Start(t)
	require.NoError(t, srv.CreateDatabase(t.Context(), "tib"))
	// An integer field first, as an older writer would have left it.
	h0 := newHarness(t, realConfig(srv))
	h0.appendLines(t, "conflict count=1i 1700000000")
	require.NoError(t, flushFor(h0, 20*time.Second))

	tests := []struct {
		name        string
		lines       []string
		measurement string
		wantRows    int
		wantWritten float64
		wantDropped map[string]float64
		wantLog     string
	}{
		{
			name:        "field type conflict drops one, keeps the others",
			lines:       []string{"conflict count=2 1700000001", "ok1 count=1 1700000001", "ok1 count=2 1700000002"},
			measurement: "ok1", wantRows: 2, wantWritten: 2,
			wantDropped: map[string]float64{"partial_write": 1, "rejected": 0},
			wantLog:     "field type conflict",
		},
		{
			name:        "a line that does not parse among good ones",
			lines:       []string{"ok2 v=1 1700000001", "bad line here", "ok2 v=2 1700000002"},
			measurement: "ok2", wantRows: 2, wantWritten: 2,
			wantDropped: map[string]float64{"partial_write": 1, "rejected": 0},
			wantLog:     "unable to parse 'bad line here'",
		},
		{
			name:        "nothing parses",
			lines:       []string{"bad", "worse line"},
			measurement: "bad", wantRows: 0, wantWritten: 0,
			wantDropped: map[string]float64{"partial_write": 0, "rejected": 2},
			wantLog:     "unable to parse 'bad'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, realConfig(srv))
			h.appendLines(t, tt.lines...)
			require.NoError(t, flushFor(h, 20*time.Second), "refused lines are not retried")
			require.Zero(t, h.q.Stats().Lines)
			require.Equal(t, tt.wantWritten, h.metric(t, "traefik_influxdb_bridge_points_written_total"))
			for reason, n := range tt.wantDropped {
				require.Equal(t, n, h.metric(t, "traefik_influxdb_bridge_points_dropped_total", "reason", reason), reason)
			}
			require.Zero(t, h.metric(t, "traefik_influxdb_bridge_retries_total"))
			require.Len(t, rows(t, srv, `SELECT * FROM "`+tt.measurement+`"`), tt.wantRows)
			warns := h.logs.find(slog.LevelWarn, "influxdb")
			require.Len(t, warns, 1, h.logs.all())
			require.Contains(t, warns[0].Attrs, tt.wantLog)
			require.NoError(t, h.sink.Ready(), "InfluxDB answered")
		})
	}
	types, err := srv.FieldTypes(t.Context(), "tib", "conflict")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"count": "integer"}, types)
}

func TestTLS(t *testing.T) {
	srv := influxtest.Start(t)
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	require.NoError(t, influxtest.WriteOtherCA(otherCA))
	tests := []struct {
		name    string
		tls     config.TLS
		wantErr string // in Ready's error; "" for a working setup
		wantLog string
	}{
		{name: "server CA", tls: config.TLS{CAFile: srv.CAFile}},
		{name: "server CA and client certificate", tls: config.TLS{CAFile: srv.CAFile, CertFile: srv.ClientCertFile, KeyFile: srv.ClientKeyFile}},
		{name: "server name given", tls: config.TLS{CAFile: srv.CAFile, ServerName: "localhost"}},
		{name: "insecure skip verify", tls: config.TLS{InsecureSkipVerify: true}, wantLog: "insecure_skip_verify is on"},
		{name: "wrong CA", tls: config.TLS{CAFile: otherCA}, wantErr: "certificate signed by unknown authority"},
		{name: "system roots", tls: config.TLS{}, wantErr: "certificate signed by unknown authority"},
		{name: "wrong server name", tls: config.TLS{CAFile: srv.CAFile, ServerName: "influxdb.example"}, wantErr: "not influxdb.example"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := realConfig(srv)
			cfg.InfluxDB.TLS = tt.tls
			cfg.InfluxDB.Database = fmt.Sprintf("tls%d", i)
			h := newHarness(t, cfg)
			h.appendLines(t, "m v=1 1700000000")
			if tt.wantErr == "" {
				require.NoError(t, flushFor(h, 20*time.Second))
				require.Len(t, rowsIn(t, srv, cfg.InfluxDB.Database), 1)
				if tt.wantLog != "" {
					require.Len(t, h.logs.find(slog.LevelWarn, tt.wantLog), 1)
				}
				return
			}
			require.Error(t, flushFor(h, 500*time.Millisecond))
			ready := h.sink.Ready()
			require.ErrorContains(t, ready, "influxdb unavailable (tls)")
			require.ErrorContains(t, ready, tt.wantErr)
			require.Len(t, h.logs.find(slog.LevelError, "TLS handshake with influxdb failed"), 1, h.logs.all())
			require.Equal(t, int64(1), h.q.Stats().Lines, "kept")
			dbs := rows(t, srv, "SHOW DATABASES")
			require.NotContains(t, strings.Join(dbs, "\n"), cfg.InfluxDB.Database, "nothing reached the server")
		})
	}
}

// rowsIn returns the rows of measurement m in db.
func rowsIn(t *testing.T, srv *influxtest.Server, db string) [][]any {
	t.Helper()
	series, err := srv.Query(t.Context(), db, `SELECT * FROM "m"`)
	require.NoError(t, err)
	var out [][]any
	for _, s := range series {
		out = append(out, s.Values...)
	}
	return out
}

func TestOutageKeepsDataAndLogsOnce(t *testing.T) {
	srv := influxtest.Start(t)
	h := newHarness(t, realConfig(srv))
	require.EqualError(t, h.sink.Ready(), "influxdb has not answered yet")
	require.NoError(t, h.sink.Ping(t.Context()))
	require.NoError(t, h.sink.Ready())

	require.NoError(t, srv.Stop())
	require.Error(t, h.sink.Ping(t.Context()))
	require.ErrorContains(t, h.sink.Ready(), "influxdb unavailable (unreachable)")
	h.appendLines(t, "m v=1 1700000000", "m v=2 1700000001")
	require.Error(t, flushFor(h, 500*time.Millisecond))
	require.GreaterOrEqual(t, h.metric(t, "traefik_influxdb_bridge_writes_total", "status_class", "error"), 3.0)
	require.Len(t, h.logs.find(slog.LevelWarn, "influxdb unavailable"), 1, "logged once per change of state:\n"+h.logs.all())
	require.Equal(t, int64(2), h.q.Stats().Lines)

	require.NoError(t, srv.StartAgain(t.Context()))
	require.NoError(t, flushFor(h, 20*time.Second))
	require.Len(t, rowsIn(t, srv, "tib"), 2)
	require.Len(t, h.logs.find(slog.LevelInfo, "answering again"), 1)
	require.NoError(t, h.sink.Ready())
}

func TestReadyWhenBufferNearlyFull(t *testing.T) {
	srv := influxtest.Start(t)
	cfg := realConfig(srv)
	cfg.Batch.MaxBytes = 1024
	cfg.Buffer.MaxBytes = 1000 * 1024
	h := newHarness(t, cfg)
	require.NoError(t, h.sink.Ping(t.Context()))
	line := strings.Repeat("x", 1023) + "\n"
	for range 899 {
		require.NoError(t, h.q.Append([]byte(line), 1))
	}
	require.NoError(t, h.sink.Ready(), "89.9% full")
	require.NoError(t, h.q.Append([]byte(line), 1))
	require.EqualError(t, h.sink.Ready(), "buffer is 90% full (921600 of 1024000 bytes)")
}

func TestPasswordFile(t *testing.T) {
	srv := influxtest.Start(t)
	file := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(file, []byte(srv.Password+"\n"), 0o600))
	cfg := realConfig(srv)
	cfg.InfluxDB.Password = "not-this-one"
	cfg.InfluxDB.PasswordFile = file
	h := newHarness(t, cfg)
	h.appendLines(t, "m v=1 1700000000")
	require.NoError(t, flushFor(h, 20*time.Second))
	require.Len(t, rowsIn(t, srv, "tib"), 1)

	cfg.InfluxDB.PasswordFile = filepath.Join(t.TempDir(), "absent")
	_, err := New(cfg, NewMemoryQueue(1<<20), nil, slog.New(&logRecorder{}))
	require.ErrorContains(t, err, "influxdb.password_file")
}

// TestBodyLimitOfARealServer provokes 413 with influxd's own max-body-size.
func TestBodyLimitOfARealServer(t *testing.T) {
	srv := influxtest.Start(t, influxtest.WithMaxBodySize(4096))
	cfg := realConfig(srv)
	cfg.InfluxDB.Gzip = false
	h := newHarness(t, cfg)
	var lines []string
	for i := range 300 {
		lines = append(lines, fmt.Sprintf("m,n=%03d v=%d 1700000000", i, i))
	}
	h.appendLines(t, lines...) // about 8 KiB: over the limit, so split in halves
	require.NoError(t, flushFor(h, 20*time.Second))
	require.Len(t, rowsIn(t, srv, "tib"), 300)
	require.Equal(t, 300.0, h.metric(t, "traefik_influxdb_bridge_points_written_total"))
	require.Zero(t, h.metric(t, "traefik_influxdb_bridge_points_dropped_total", "reason", "too_large"))
	require.GreaterOrEqual(t, h.metric(t, "traefik_influxdb_bridge_writes_total", "status_class", "4xx"), 1.0)
}

// TestRunThroughAnOutage appends while Run sends and the server goes away
// and comes back: with room in the buffer, every point arrives.
func TestRunThroughAnOutage(t *testing.T) {
	srv := influxtest.Start(t)
	cfg := realConfig(srv)
	cfg.Batch.MaxLines = 120
	h := newHarness(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.sink.Run(ctx) }()

	const records, perRecord = 30, 50
	appendRecord := func(r int) {
		var lines []string
		for i := range perRecord {
			lines = append(lines, fmt.Sprintf("m,r=%02d,i=%02d v=%d 1700000000", r, i, r*perRecord+i))
		}
		h.appendLines(t, lines...)
	}
	for r := range records {
		switch r {
		case 10:
			require.NoError(t, srv.Stop())
		case 20:
			// Run has met the outage before the server comes back.
			// (The condition runs on another goroutine: no require in it.)
			require.Eventually(t, func() bool {
				return h.sink.m.writes.WithLabelValues("error").Value() >= 2
			}, 10*time.Second, 5*time.Millisecond)
			require.NoError(t, srv.StartAgain(t.Context()))
		}
		appendRecord(r)
	}
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, flushFor(h, 20*time.Second))

	series, err := srv.Query(t.Context(), "tib", `SELECT count("v") FROM "m"`)
	require.NoError(t, err)
	require.Len(t, series, 1)
	require.Equal(t, fmt.Sprint(records*perRecord), fmt.Sprint(series[0].Values[0][1]))
	require.Equal(t, float64(records*perRecord), h.metric(t, "traefik_influxdb_bridge_points_written_total"))
	require.Zero(t, h.metric(t, "traefik_influxdb_bridge_points_dropped_total", "reason", "buffer_full"))
}

// TestFullBufferDropsOldestDuringOutage: when the buffer fills while InfluxDB
// is away, the oldest records go, counted, and the newest are written.
func TestFullBufferDropsOldestDuringOutage(t *testing.T) {
	srv := influxtest.Start(t)
	cfg := realConfig(srv)
	cfg.Batch.MaxBytes = 1024
	line := func(i int) string { return fmt.Sprintf("m,i=%03d v=%d 1700000000", i, 1000+i) }
	size := len(line(0)) + 1 // 26 bytes, newline included, for every i
	cfg.Buffer.MaxBytes = 1024
	h := newHarness(t, cfg)
	require.NoError(t, srv.Stop())
	for i := range 100 { // 2600 bytes into a 1024-byte buffer
		h.appendLines(t, line(i))
	}
	st := h.q.Stats()
	kept := int(st.Lines)
	require.Equal(t, 1024/size, kept)
	require.Equal(t, int64(100-kept), st.DroppedLines["buffer_full"])
	require.Error(t, flushFor(h, 300*time.Millisecond))

	require.NoError(t, srv.StartAgain(t.Context()))
	require.NoError(t, flushFor(h, 20*time.Second))
	got := rows(t, srv, `SELECT "v" FROM "m" GROUP BY "i"`)
	require.Len(t, got, kept)
	require.Equal(t, fmt.Sprintf("m i=%03d: [2023-11-14T22:13:20Z %d]", 100-kept, 1000+100-kept), got[0], "the oldest kept is the first of the newest")
	require.Equal(t, float64(100-kept), h.metric(t, "traefik_influxdb_bridge_points_dropped_total", "reason", "buffer_full"))
	require.Equal(t, float64(kept), h.metric(t, "traefik_influxdb_bridge_points_written_total"))
}

// pingsServed is how many /ping requests srv has answered, from influxd's
// own counters (/debug/vars, httpd pingReq).
func pingsServed(t *testing.T, srv *influxtest.Server) float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/debug/vars", nil)
	require.NoError(t, err)
	req.SetBasicAuth(srv.Username, srv.Password)
	resp, err := srv.HTTPClient().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var vars map[string]json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&vars))
	for k, raw := range vars {
		if !strings.HasPrefix(k, "httpd") {
			continue
		}
		var st struct {
			Values map[string]float64 `json:"values"`
		}
		require.NoError(t, json.Unmarshal(raw, &st))
		return st.Values["pingReq"]
	}
	t.Fatalf("no httpd statistics in /debug/vars")
	return 0
}

// TestPingUnlessWritten: a write answered within the period stands for a
// ping; without one, or after it is older than the period, the sink pings.
func TestPingUnlessWritten(t *testing.T) {
	srv := influxtest.Start(t)
	h := newHarness(t, realConfig(srv))
	before := pingsServed(t, srv)
	require.NoError(t, h.sink.PingUnlessWritten(t.Context(), time.Hour))
	require.Equal(t, before+1, pingsServed(t, srv), "no write yet: a ping")
	require.NoError(t, h.sink.Ready())

	h.appendLines(t, "m v=1 1700000000")
	require.NoError(t, flushFor(h, 20*time.Second))
	require.NoError(t, h.sink.PingUnlessWritten(t.Context(), time.Hour))
	require.Equal(t, before+1, pingsServed(t, srv), "a write answered within the hour: no ping")
	require.NoError(t, h.sink.Ready())

	require.NoError(t, h.sink.PingUnlessWritten(t.Context(), 0))
	require.Equal(t, before+2, pingsServed(t, srv), "the write is older than the period: a ping")
}
