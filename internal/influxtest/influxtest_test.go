package influxtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// write posts line protocol and returns the status code and body.
func write(t *testing.T, s *Server, user, pass, db, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		s.URL+"/write?"+url.Values{"db": {db}, "precision": {"s"}}.Encode(), strings.NewReader(body))
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	c := s.HTTPClient()
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	tests := []struct {
		name       string
		opts       []Option
		wantScheme string
		auth       bool
	}{
		{name: "https with auth", wantScheme: "https://", auth: true},
		{name: "plain http without auth", opts: []Option{WithoutTLS(), WithoutAuth()}, wantScheme: "http://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, tt.opts...)
			ctx := t.Context()
			require.True(t, strings.HasPrefix(s.URL, tt.wantScheme+"127.0.0.1:"), s.URL)
			require.Equal(t, tt.auth, s.Username != "")
			require.NoError(t, s.CreateDatabase(ctx, "db1"))

			code, body := write(t, s, s.Username, s.Password, "db1", "m,host=a value=1.5 1700000000\nm,host=b value=2 1700000000\n")
			require.Equal(t, http.StatusNoContent, code, body)

			series, err := s.Query(ctx, "db1", `SELECT "value" FROM "m" GROUP BY "host"`)
			require.NoError(t, err)
			require.Len(t, series, 2)
			require.Equal(t, map[string]string{"host": "a"}, series[0].Tags)
			require.Equal(t, [][]any{{"2023-11-14T22:13:20Z", "1.5"}}, stringify(series[0].Values))
			require.Equal(t, [][]any{{"2023-11-14T22:13:20Z", "2"}}, stringify(series[1].Values))

			types, err := s.FieldTypes(ctx, "db1", "m")
			require.NoError(t, err)
			require.Equal(t, map[string]string{"value": "float"}, types)

			if tt.auth {
				code, _ = write(t, s, "", "", "db1", "m value=1 1700000000\n")
				require.Equal(t, http.StatusUnauthorized, code, "no credentials")
				code, _ = write(t, s, s.Username, "wrong", "db1", "m value=1 1700000000\n")
				require.Equal(t, http.StatusUnauthorized, code, "wrong password")

				require.NoError(t, s.CreateUser(ctx, "reader", "pw", map[string]string{"db1": "READ"}))
				code, body = write(t, s, "reader", "pw", "db1", "m value=1 1700000000\n")
				require.Equal(t, http.StatusForbidden, code, body)
			}
		})
	}
}

// stringify turns json.Number values into strings so rows compare as written.
func stringify(rows [][]any) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = make([]any, len(r))
		for j, v := range r {
			if n, ok := v.(interface{ String() string }); ok {
				out[i][j] = n.String()
			} else {
				out[i][j] = v
			}
		}
	}
	return out
}

func TestTLS(t *testing.T) {
	s := Start(t)
	pool := x509.NewCertPool()
	other := filepath.Join(t.TempDir(), "other-ca.pem")
	require.NoError(t, WriteOtherCA(other))
	pem, err := os.ReadFile(other)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(pem))

	tests := []struct {
		name    string
		client  *http.Client
		wantErr bool
	}{
		{name: "server CA trusted", client: s.HTTPClient()},
		{name: "other CA", client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, wantErr: true},
		{name: "system roots", client: &http.Client{Transport: &http.Transport{}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/ping", nil)
			require.NoError(t, err)
			resp, err := tt.client.Do(req)
			if tt.wantErr {
				var unknown x509.UnknownAuthorityError
				require.ErrorAs(t, err, &unknown)
				return
			}
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusNoContent, resp.StatusCode)
			require.NotEmpty(t, resp.Header.Get("X-Influxdb-Version"))
		})
	}
}

func TestRestartKeepsPortAndData(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	require.NoError(t, s.CreateDatabase(ctx, "db"))
	code, body := write(t, s, s.Username, s.Password, "db", "m value=3 1700000000\n")
	require.Equal(t, http.StatusNoContent, code, body)
	url := s.URL

	require.NoError(t, s.Stop())
	c := s.HTTPClient()
	_, err := c.Get(s.URL + "/ping")
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "stopped server must refuse connections")

	require.NoError(t, s.StartAgain(ctx))
	require.Equal(t, url, s.URL)
	series, err := s.Query(ctx, "db", `SELECT "value" FROM "m"`)
	require.NoError(t, err)
	require.Len(t, series, 1)
	require.Equal(t, [][]any{{"2023-11-14T22:13:20Z", "3"}}, stringify(series[0].Values))

	require.NoError(t, s.Restart())
	require.Equal(t, url, s.URL)
	_, err = s.Query(ctx, "db", `SELECT "value" FROM "m"`)
	require.NoError(t, err, "admin survives a restart")
}

func TestTwoServersAtOnce(t *testing.T) {
	a, b := Start(t), Start(t)
	require.NotEqual(t, a.URL, b.URL)
	require.NotEqual(t, a.Dir, b.Dir)
	for _, s := range []*Server{a, b} {
		require.NoError(t, s.CreateDatabase(t.Context(), "x"))
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	Require(t, "")
	s, err := Launch(t.Context(), Options{NoTLS: true, NoAuth: true})
	require.NoError(t, err)
	pid := s.proc.Pid()
	require.NoError(t, s.Close())
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "influxd still running after Close")
	_, err = os.Stat(s.Dir)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestLaunchErrorCarriesLogTail(t *testing.T) {
	// A stand-in binary that fails at once: the error must quote what it printed.
	bin := filepath.Join(t.TempDir(), "influxd")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho 'run: open server: boom-from-influxd' >&2\nexit 1\n"), 0o755))
	_, err := Launch(t.Context(), Options{Binary: bin})
	require.Error(t, err)
	require.Contains(t, err.Error(), "boom-from-influxd")
	require.Contains(t, err.Error(), "exited early")
	require.False(t, errors.Is(err, context.DeadlineExceeded))
}
