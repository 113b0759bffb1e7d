// Package influxtest runs a real InfluxDB 1.x (influxd) for tests and demo
// programs: each server has its own temporary directory, its own loopback
// ports, HTTPS with a certificate authority generated for it, and
// authentication with an admin user. Close stops the process (its whole
// process group) and removes the directory.
package influxtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/childproc"
)

// Default admin credentials of a server started with authentication.
const (
	AdminUser     = "admin"
	AdminPassword = "influxtest-admin-pw"
)

// Options shape one server. The zero value is HTTPS with authentication and
// influxd's default body limit, found as "influxd" on PATH.
type Options struct {
	// NoTLS serves plain HTTP.
	NoTLS bool
	// NoAuth turns authentication off; Username and Password stay empty.
	NoAuth bool
	// MaxBodySize is [http] max-body-size in bytes; 0 keeps influxd's 25 MB.
	MaxBodySize int
	// Binary is the influxd to run; empty looks "influxd" up on PATH.
	Binary string
	// StartTimeout bounds each start (Launch, Restart); 0 means 30s.
	StartTimeout time.Duration
}

// Server is one running influxd.
type Server struct {
	// URL is the base URL, https://127.0.0.1:PORT (http:// with NoTLS).
	URL string
	// CAFile is the PEM certificate of the CA that signed the server's
	// certificate; CertFile and KeyFile are the server's own (SAN 127.0.0.1,
	// ::1 and localhost). ClientCertFile and ClientKeyFile are a client
	// certificate from the same CA. All are empty with NoTLS.
	CAFile, CertFile, KeyFile     string
	ClientCertFile, ClientKeyFile string
	// Username and Password are the admin's; empty with NoAuth.
	Username, Password string
	// Dir holds the config, the certificates, meta, data, wal and the log.
	Dir string
	// LogFile is influxd's stdout and stderr.
	LogFile string

	opts       Options
	binary     string
	configFile string
	httpAddr   string

	mu   sync.Mutex
	proc *childproc.Process // nil while stopped
}

// Launch creates a directory and starts influxd in it, waits until /ping
// answers 204 and creates the admin user. ctx bounds the start only; the
// process runs until Stop or Close. On error nothing is left running and the
// error carries the tail of influxd's log.
func Launch(ctx context.Context, opts Options) (*Server, error) {
	binary := opts.Binary
	if binary == "" {
		binary = "influxd"
	}
	path, err := exec.LookPath(binary)
	if err != nil {
		return nil, fmt.Errorf("influxtest: %w", err)
	}
	dir, err := os.MkdirTemp("", "influxtest-")
	if err != nil {
		return nil, fmt.Errorf("influxtest: %w", err)
	}
	s := &Server{
		Dir:        dir,
		LogFile:    filepath.Join(dir, "influxd.log"),
		opts:       opts,
		binary:     path,
		configFile: filepath.Join(dir, "influxd.conf"),
	}
	if err := s.launch(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) launch(ctx context.Context) error {
	scheme := "https"
	if s.opts.NoTLS {
		scheme = "http"
	} else {
		p, err := newPKI(s.Dir)
		if err != nil {
			return fmt.Errorf("influxtest: certificates: %w", err)
		}
		s.CAFile, s.CertFile, s.KeyFile = p.caFile, p.certFile, p.keyFile
		s.ClientCertFile, s.ClientKeyFile = p.clientCertFile, p.clientKeyFile
	}
	// A port found free can be taken by someone else before influxd binds it;
	// a start that failed for that reason is tried again with new ports.
	var err error
	for range 3 {
		var ports []int // HTTP, RPC
		if ports, err = childproc.FreePorts(2); err != nil {
			return fmt.Errorf("influxtest: %w", err)
		}
		s.httpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		s.URL = scheme + "://" + s.httpAddr
		conf := s.config(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])))
		if err = os.WriteFile(s.configFile, []byte(conf), 0o600); err != nil {
			return fmt.Errorf("influxtest: %w", err)
		}
		err = s.start(ctx)
		if err == nil || !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		return err
	}
	if !s.opts.NoAuth {
		// With auth on and no user yet, influxd lets anyone create the first admin.
		q := fmt.Sprintf("CREATE USER %s WITH PASSWORD '%s' WITH ALL PRIVILEGES", quoteIdent(AdminUser), quoteString(AdminPassword))
		if err := s.exec(ctx, "", q, false); err != nil {
			_ = s.Stop()
			return fmt.Errorf("influxtest: create admin: %w", err)
		}
		s.Username, s.Password = AdminUser, AdminPassword
	}
	return nil
}

func (s *Server) config(rpcAddr string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "reporting-enabled = false\nbind-address = %q\n\n", rpcAddr)
	fmt.Fprintf(&b, "[meta]\n  dir = %q\n  logging-enabled = false\n\n", filepath.Join(s.Dir, "meta"))
	fmt.Fprintf(&b, "[data]\n  dir = %q\n  wal-dir = %q\n  query-log-enabled = false\n\n",
		filepath.Join(s.Dir, "data"), filepath.Join(s.Dir, "wal"))
	// The _internal database would add writes every 10s to a shared machine.
	b.WriteString("[monitor]\n  store-enabled = false\n\n")
	fmt.Fprintf(&b, "[http]\n  enabled = true\n  bind-address = %q\n  auth-enabled = %t\n  log-enabled = true\n  pprof-enabled = false\n",
		s.httpAddr, !s.opts.NoAuth)
	if !s.opts.NoTLS {
		fmt.Fprintf(&b, "  https-enabled = true\n  https-certificate = %q\n  https-private-key = %q\n", s.CertFile, s.KeyFile)
	}
	if s.opts.MaxBodySize > 0 {
		fmt.Fprintf(&b, "  max-body-size = %d\n", s.opts.MaxBodySize)
	}
	b.WriteString("\n[logging]\n  level = \"info\"\n  suppress-logo = true\n")
	b.WriteString("\n[continuous_queries]\n  enabled = false\n")
	return b.String()
}

var errAddrInUse = errors.New("address in use")

// start runs influxd with the config file and waits for /ping.
func (s *Server) start(ctx context.Context) error {
	timeout := s.opts.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.Command(s.binary, "run", "-config", s.configFile)
	cmd.Dir = s.Dir
	cmd.Env = cleanEnv()
	proc, err := childproc.Start(cmd, s.LogFile)
	if err != nil {
		return fmt.Errorf("influxtest: %w", err)
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()

	if err := s.waitReady(ctx, proc.Exited()); err != nil {
		_ = s.Stop()
		tail := s.LogTail(4096)
		if bytes.Contains([]byte(tail), []byte("address already in use")) {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return fmt.Errorf("influxtest: influxd did not become ready: %w\n--- influxd log tail (%s) ---\n%s", err, s.LogFile, tail)
	}
	return nil
}

func (s *Server) waitReady(ctx context.Context, exited <-chan struct{}) error {
	client := s.HTTPClient()
	defer client.CloseIdleConnections()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = s.ping(ctx, client)
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("influxd exited early (last ping: %w)", last)
		case <-ctx.Done():
			return fmt.Errorf("%w (last ping: %w)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func (s *Server) ping(ctx context.Context, client *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("/ping answered %s", resp.Status)
	}
	return nil
}

// Stop ends influxd (SIGTERM, then SIGKILL after 10s) and keeps the
// directory. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	proc := s.proc
	s.proc = nil
	s.mu.Unlock()
	if proc != nil {
		proc.Stop(10 * time.Second)
	}
	return nil
}

// Restart stops influxd and starts it again on the same port with the same
// data, as an outage a client must ride out.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(context.Background())
}

// Start starts a stopped server again on the same port with the same data.
// It is Restart without the stop, for tests that keep the server down a while.
func (s *Server) StartAgain(ctx context.Context) error {
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		return errors.New("influxtest: server is running")
	}
	return s.start(ctx)
}

// Close stops influxd and removes its directory.
func (s *Server) Close() error {
	err := s.Stop()
	if rmErr := os.RemoveAll(s.Dir); err == nil {
		err = rmErr
	}
	return err
}

// LogTail returns up to the last n bytes of influxd's log, from a line's
// start.
func (s *Server) LogTail(n int) string { return childproc.LogTail(s.LogFile, n) }

// HTTPClient returns a client that trusts the server's CA. Each call returns a
// new client.
func (s *Server) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if s.CAFile != "" {
		pool := x509.NewCertPool()
		if b, err := os.ReadFile(s.CAFile); err == nil {
			pool.AppendCertsFromPEM(b)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// cleanEnv is the environment without INFLUXDB_* variables, which influxd
// would apply over the config file (a stray INFLUXDB_HTTP_BIND_ADDRESS would
// move the server).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INFLUXDB_") {
			env = append(env, kv)
		}
	}
	return env
}
