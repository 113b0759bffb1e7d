package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

func scrapeConfig() config.Traefik {
	c := config.Default().Traefik
	c.Timeout = 5 * time.Second
	return c
}

// recorder keeps what a handler saw, for the test to check afterwards.
type recorder struct {
	mu  sync.Mutex
	got []http.Header
}

func (r *recorder) record(h http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, h.Clone())
}

func (r *recorder) last() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		return nil
	}
	return r.got[len(r.got)-1]
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestScrape(t *testing.T) {
	page, err := os.ReadFile("testdata/traefik-v3.6.12-scrape-1.prom")
	require.NoError(t, err)
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write(page)
	require.NoError(t, zw.Close())
	pb := readProtoFixture(t)

	tests := []struct {
		name    string
		cfg     func(c *config.Traefik)
		handler func(w http.ResponseWriter, r *http.Request)
		want    []byte // body on success
		format  Format // of the body on success
		kind    string
		wantErr string // in the error, which is a *ContentTypeError
		check   func(t *testing.T, h http.Header)
	}{
		{
			name: "text answer to the protobuf-preferring Accept of traefik.format auto",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
				_, _ = w.Write(page)
			},
			want: page, format: FormatText, kind: "ok",
			check: func(t *testing.T, h http.Header) {
				require.Equal(t, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,"+
					"text/plain;version=0.0.4;q=0.3", h.Get("Accept"))
				require.Empty(t, h.Get("Accept-Encoding"), "traefik.gzip auto asks no gzip from loopback")
				require.Empty(t, h.Get("Authorization"))
			},
		},
		{
			name: "traefik.gzip always asks for gzip from loopback too",
			cfg:  func(c *config.Traefik) { c.Gzip = config.GzipAlways },
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(zipped.Bytes())
			},
			want: page, kind: "ok",
			check: func(t *testing.T, h http.Header) { require.Equal(t, "gzip", h.Get("Accept-Encoding")) },
		},
		{
			name: "gzip",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(zipped.Bytes())
			},
			want: page, kind: "ok",
		},
		{
			name: "basic auth and headers",
			cfg: func(c *config.Traefik) {
				c.Username, c.Password = "scraper", "s3cret"
				c.Headers = map[string]string{"X-Tenant": "blue", "Host": "metrics.internal"}
			},
			handler: func(w http.ResponseWriter, r *http.Request) {
				if u, p, ok := r.BasicAuth(); !ok || u != "scraper" || p != "s3cret" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				if r.Host != "metrics.internal" {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				_, _ = w.Write(page)
			},
			want: page, kind: "ok",
			check: func(t *testing.T, h http.Header) { require.Equal(t, "blue", h.Get("X-Tenant")) },
		},
		{
			name: "basic auth password file wins over the inline password",
			cfg: func(c *config.Traefik) {
				c.Username, c.Password = "scraper", "stale"
				c.PasswordFile = writeFile(t, "pw", "fromfile\n")
			},
			handler: func(w http.ResponseWriter, r *http.Request) {
				if _, p, _ := r.BasicAuth(); p != "fromfile" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				_, _ = w.Write(page)
			},
			want: page, kind: "ok",
		},
		{
			name: "bearer token file",
			cfg:  func(c *config.Traefik) { c.BearerTokenFile = writeFile(t, "tok", "tok-123\r\n") },
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok-123" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				_, _ = w.Write(page)
			},
			want: page, kind: "ok",
		},
		{
			name: "wrong password is a 4xx that does not show the password",
			cfg:  func(c *config.Traefik) { c.Username, c.Password = "scraper", "hunter2" },
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
			},
			kind: "http_4xx",
		},
		{
			name:    "server error",
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
			kind:    "http_5xx",
		},
		{
			name:    "body over max_body by its length",
			cfg:     func(c *config.Traefik) { c.MaxBody = config.Size(len(page) - 1) },
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(page) },
			kind:    "too_large",
		},
		{
			name: "body over max_body without a length",
			cfg:  func(c *config.Traefik) { c.MaxBody = config.Size(len(page) - 1) },
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(page[:100])
				w.(http.Flusher).Flush() // chunked: no Content-Length
				_, _ = w.Write(page[100:])
			},
			kind: "too_large",
		},
		{
			name:    "body of exactly max_body",
			cfg:     func(c *config.Traefik) { c.MaxBody = config.Size(len(page)) },
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(page) },
			want:    page, kind: "ok",
		},
		{
			name: "gzip bomb: max_body bounds the decompressed size",
			cfg:  func(c *config.Traefik) { c.MaxBody = config.Size(len(page) - 1) },
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(zipped.Bytes())
			},
			kind: "too_large",
		},
		{
			name: "corrupt gzip",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(page[:100])
			},
			kind: "error",
		},
		{
			name: "protobuf answer",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
				_, _ = w.Write(pb)
			},
			want: pb, format: FormatProtobuf, kind: "ok",
		},
		{
			name: "traefik.format auto prefers protobuf",
			cfg:  func(c *config.Traefik) { c.Format = config.FormatAuto },
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/vnd.google.protobuf;encoding=delimited;proto=io.prometheus.client.MetricFamily")
				_, _ = w.Write(pb)
			},
			want: pb, format: FormatProtobuf, kind: "ok",
			check: func(t *testing.T, h http.Header) {
				require.True(t, strings.HasPrefix(h.Get("Accept"), "application/vnd.google.protobuf;"), h.Get("Accept"))
			},
		},
		{
			name: "traefik.format text asks for text only",
			cfg:  func(c *config.Traefik) { c.Format = config.FormatText },
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
				_, _ = w.Write(page)
			},
			want: page, format: FormatText, kind: "ok",
			check: func(t *testing.T, h http.Header) { require.Equal(t, "text/plain;version=0.0.4", h.Get("Accept")) },
		},
		{
			name: "no content type is text",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil // no sniffing
				_, _ = w.Write(page)
			},
			want: page, format: FormatText, kind: "ok",
		},
		{
			name: "OpenMetrics is refused, named",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
				_, _ = w.Write(page)
			},
			kind: "error", wantErr: `"application/openmetrics-text; version=1.0.0; charset=utf-8"`,
		},
		{
			name: "protobuf in another encoding is refused, named",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text")
				_, _ = w.Write(page)
			},
			kind: "error", wantErr: "encoding=text",
		},
		{
			name: "unknown content type is refused, named",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html>"))
			},
			kind: "error", wantErr: `"text/html"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec.record(r.Header)
				tt.handler(w, r)
			}))
			defer srv.Close()
			cfg := scrapeConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			s, err := NewScraper(cfg)
			require.NoError(t, err)
			defer s.Close()
			got, format, err := s.Scrape(context.Background(), srv.URL+"/metrics", nil)
			require.Equal(t, tt.kind, ErrorKind(err), "error: %v", err)
			if tt.want != nil {
				require.Equal(t, tt.want, got)
				require.Equal(t, tt.format, format)
			}
			if tt.wantErr != "" {
				var ce *ContentTypeError
				require.True(t, errors.As(err, &ce), "want a ContentTypeError, got %v", err)
				require.Contains(t, err.Error(), tt.wantErr)
			}
			if err != nil {
				require.Empty(t, got)
				if cfg.Password != "" {
					require.NotContains(t, err.Error(), string(cfg.Password))
				}
			}
			if tt.kind == "http_4xx" || tt.kind == "http_5xx" {
				var se *StatusError
				require.True(t, errors.As(err, &se))
				require.Equal(t, map[string]int{"http_4xx": 401, "http_5xx": 500}[tt.kind], se.Code)
			}
			if tt.check != nil {
				tt.check(t, rec.last())
			}
		})
	}
}

func TestAsksGzip(t *testing.T) {
	tests := []struct {
		url                 string
		auto, always, never bool
	}{
		{"http://127.0.0.1:9100/metrics", false, true, false},
		{"http://127.10.0.3:9100/metrics", false, true, false},
		{"http://[::1]:9100/metrics", false, true, false},
		{"http://[::ffff:127.0.0.1]:9100/metrics", false, true, false},
		{"http://localhost:9100/metrics", false, true, false},
		{"https://LocalHost/metrics", false, true, false},
		{"http://10.0.0.7:9100/metrics", true, true, false},
		{"http://[2001:db8::1]:9100/metrics", true, true, false},
		{"http://traefik.kube-system.svc:9100/metrics", true, true, false},
		{"http://localhost.example.com/metrics", true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			require.NoError(t, err)
			for mode, want := range map[string]bool{config.GzipAuto: tt.auto, "": tt.auto, config.GzipAlways: tt.always, config.GzipNever: tt.never} {
				require.Equal(t, want, (&Scraper{gzip: mode}).asksGzip(u), "traefik.gzip %q", mode)
			}
		})
	}
}

func TestScrapeReusesBuffer(t *testing.T) {
	page := bytes.Repeat([]byte("a 1\n"), 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(page) }))
	defer srv.Close()
	s, err := NewScraper(scrapeConfig())
	require.NoError(t, err)
	defer s.Close()
	buf, _, err := s.Scrape(context.Background(), srv.URL, nil)
	require.NoError(t, err)
	first := &buf[0]
	buf, _, err = s.Scrape(context.Background(), srv.URL, buf)
	require.NoError(t, err)
	require.Equal(t, page, buf)
	require.Same(t, first, &buf[0], "the second scrape should read into the first one's array")
}

func TestScrapeTimeoutAndConnect(t *testing.T) {
	release := make(chan struct{})
	// A hang is an answer no real Traefik gives on demand: a handler that
	// waits plays it.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("a 1\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer stall.Close()
	defer close(release)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedURL := "http://" + ln.Addr().String() + "/metrics"
	require.NoError(t, ln.Close())

	cfg := scrapeConfig()
	cfg.Timeout = 300 * time.Millisecond
	s, err := NewScraper(cfg)
	require.NoError(t, err)
	defer s.Close()

	for _, tt := range []struct {
		name, url, kind string
		ctx             func() context.Context
	}{
		{"hang hits the deadline", hang.URL, "timeout", context.Background},
		{"body stalls past the deadline", stall.URL, "timeout", context.Background},
		{"closed port", closedURL, "connect", context.Background},
		{"caller cancels", hang.URL, "canceled", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.Scrape(tt.ctx(), tt.url, nil)
			require.Error(t, err)
			require.Equal(t, tt.kind, ErrorKind(err), "error: %v", err)
		})
	}
}

// testPKI is a CA with a server certificate for "traefik.test" and a client
// certificate, written as PEM files.
type testPKI struct {
	caFile, clientCert, clientKey string
	server                        tls.Certificate
	pool                          *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, usage x509.ExtKeyUsage, dns []string) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"}, DNSNames: dns,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		kder, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	var p testPKI
	p.caFile = filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	sc, sk := issue(2, x509.ExtKeyUsageServerAuth, []string{"traefik.test"})
	p.server, err = tls.X509KeyPair(sc, sk)
	require.NoError(t, err)
	cc, ck := issue(3, x509.ExtKeyUsageClientAuth, nil)
	p.clientCert, p.clientKey = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	require.NoError(t, os.WriteFile(p.clientCert, cc, 0o600))
	require.NoError(t, os.WriteFile(p.clientKey, ck, 0o600))
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)
	return p
}

func TestScrapeTLS(t *testing.T) {
	pki := newTestPKI(t)
	page := []byte("a 1\n")
	serve := func(t *testing.T, c *tls.Config) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(page) }))
		srv.TLS = c
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	plain := func() *tls.Config { return &tls.Config{Certificates: []tls.Certificate{pki.server}} }
	tests := []struct {
		name   string
		server func() *tls.Config
		cfg    config.TLS
		kind   string
	}{
		{"own CA and server name", plain, config.TLS{CAFile: pki.caFile, ServerName: "traefik.test"}, "ok"},
		{"system roots do not know the CA", plain, config.TLS{ServerName: "traefik.test"}, "tls"},
		{"wrong server name", plain, config.TLS{CAFile: pki.caFile, ServerName: "other.test"}, "tls"},
		{"insecure_skip_verify", plain, config.TLS{InsecureSkipVerify: true}, "ok"},
		{"client certificate required and given", func() *tls.Config {
			c := plain()
			c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, pki.pool
			return c
		}, config.TLS{CAFile: pki.caFile, ServerName: "traefik.test", CertFile: pki.clientCert, KeyFile: pki.clientKey}, "ok"},
		{"client certificate required and missing", func() *tls.Config {
			c := plain()
			c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, pki.pool
			return c
		}, config.TLS{CAFile: pki.caFile, ServerName: "traefik.test"}, "tls"},
		{"server stuck at TLS 1.1 is refused", func() *tls.Config {
			c := plain()
			c.MaxVersion = tls.VersionTLS11
			return c
		}, config.TLS{InsecureSkipVerify: true}, "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, tt.server())
			cfg := scrapeConfig()
			cfg.TLS = tt.cfg
			s, err := NewScraper(cfg)
			require.NoError(t, err)
			defer s.Close()
			got, _, err := s.Scrape(context.Background(), srv.URL, nil)
			require.Equal(t, tt.kind, ErrorKind(err), "error: %v", err)
			if err == nil {
				require.Equal(t, page, got)
			}
		})
	}
}

func TestNewScraperErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	notPEM := writeFile(t, "ca.pem", "not a certificate")
	secret := writeFile(t, "pw", "topsecret\n")
	for _, tt := range []struct {
		name string
		cfg  func(c *config.Traefik)
		want string
	}{
		{"missing CA file", func(c *config.Traefik) { c.TLS.CAFile = missing }, "traefik.tls: ca_file"},
		{"CA file without PEM", func(c *config.Traefik) { c.TLS.CAFile = notPEM }, "no PEM certificate"},
		{"cert without key", func(c *config.Traefik) { c.TLS.CertFile = notPEM }, "cert_file and key_file go together"},
		{"bad key pair", func(c *config.Traefik) { c.TLS.CertFile, c.TLS.KeyFile = notPEM, notPEM }, "cert_file/key_file"},
		{"missing password file", func(c *config.Traefik) { c.PasswordFile = missing }, "traefik.password_file"},
		{"empty token file", func(c *config.Traefik) { c.BearerTokenFile = writeFile(t, "tok", "\n") }, "is empty"},
		{"token file with a password", func(c *config.Traefik) {
			c.Username, c.BearerTokenFile = "u", secret
		}, "cannot be combined"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := scrapeConfig()
			tt.cfg(&cfg)
			_, err := NewScraper(cfg)
			require.ErrorContains(t, err, tt.want)
			require.False(t, strings.Contains(err.Error(), "topsecret"), "secret in error: %v", err)
		})
	}
}

// TestStreamDeadlineCountsWaiting: traefik.timeout counts the time spent
// waiting for Traefik, not the time the reader spends between reads, so a
// slow parse of a page that arrives quickly is no timeout.
func TestStreamDeadlineCountsWaiting(t *testing.T) {
	page := strings.Repeat("a 1\n", 100000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(page))
	}))
	defer srv.Close()
	cfg := scrapeConfig()
	cfg.Timeout = 100 * time.Millisecond
	s, err := NewScraper(cfg)
	require.NoError(t, err)
	defer s.Close()
	got := 0
	err = s.Stream(context.Background(), srv.URL, func(body io.Reader, _ Format) error {
		buf := make([]byte, 64<<10)
		for {
			n, err := body.Read(buf)
			got += n
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			time.Sleep(30 * time.Millisecond) // parsing, slowly
		}
	})
	require.NoError(t, err)
	require.Equal(t, len(page), got)
}
