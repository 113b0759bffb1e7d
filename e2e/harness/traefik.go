package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TraefikOptions describe one Traefik instance.
type TraefikOptions struct {
	// Binary is the Traefik executable (see TraefikBinary).
	Binary string
	// StaticConfig and DynamicConfig are the shipped example files; empty
	// means examples/traefik/traefik.yml and dynamic.yml under Root.
	StaticConfig, DynamicConfig string
	// Root is the checkout (see RepoRoot); needed when a config path is empty.
	Root string
	// Dir holds the rewritten static config, the certificate and the log.
	Dir string
	// BackendURL is the plain backend; DeadBackendURL an address where
	// nothing listens ("" keeps the default of dynamic.yml).
	BackendURL, DeadBackendURL string
	// KeepAddresses runs on the entrypoint addresses written in the static
	// config (the demo). Otherwise each entrypoint gets a free loopback port.
	KeepAddresses bool
	// Name tells instances apart in logs and errors; "traefik" when empty.
	Name string
}

// Traefik is a running (or stopped, between Stop and Start) Traefik process.
type Traefik struct {
	// Entrypoints maps each entrypoint name to its host:port.
	Entrypoints map[string]string
	// WebURL, WebSecureURL and MetricsURL are the plain entrypoint, the TLS
	// entrypoint and the Prometheus endpoint.
	WebURL, WebSecureURL, MetricsURL string
	// CertFile is the websecure certificate; it is self-signed, so it is also
	// the root a client trusts.
	CertFile, KeyFile string
	// LogPath collects Traefik's output across restarts.
	LogPath string

	name       string
	binary     string
	configPath string
	env        []string
	proc       *process
	client     *http.Client
}

// LaunchTraefik writes the configuration, starts Traefik and waits until its
// dynamic configuration is live: the health-checked backend is up.
func LaunchTraefik(ctx context.Context, opts TraefikOptions) (*Traefik, error) {
	if opts.Name == "" {
		opts.Name = "traefik"
	}
	if opts.StaticConfig == "" {
		opts.StaticConfig = filepath.Join(opts.Root, "examples", "traefik", "traefik.yml")
	}
	if opts.DynamicConfig == "" {
		opts.DynamicConfig = filepath.Join(opts.Root, "examples", "traefik", "dynamic.yml")
	}
	dynamic, err := filepath.Abs(opts.DynamicConfig)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	tr := &Traefik{
		name:       opts.Name,
		binary:     opts.Binary,
		configPath: filepath.Join(opts.Dir, "traefik.yml"),
		CertFile:   filepath.Join(opts.Dir, "tls.crt"),
		KeyFile:    filepath.Join(opts.Dir, "tls.key"),
		LogPath:    filepath.Join(opts.Dir, "traefik.log"),
	}
	tr.Entrypoints, err = writeStaticConfig(opts.StaticConfig, tr.configPath, dynamic, !opts.KeepAddresses)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.Name, err)
	}
	for _, ep := range []string{"web", "websecure", "metrics"} {
		if tr.Entrypoints[ep] == "" {
			return nil, fmt.Errorf("%s: the static config %s has no %s entrypoint", opts.Name, opts.StaticConfig, ep)
		}
	}
	tr.WebURL = "http://" + tr.Entrypoints["web"]
	tr.WebSecureURL = "https://" + tr.Entrypoints["websecure"]
	tr.MetricsURL = "http://" + tr.Entrypoints["metrics"] + "/metrics"
	if err := writeSelfSignedCert(tr.CertFile, tr.KeyFile); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	certPEM, err := os.ReadFile(tr.CertFile)
	if err != nil {
		return nil, err
	}
	pool.AppendCertsFromPEM(certPEM)
	tr.client = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			// Every request on a connection of its own, closed after the
			// answer, so traefik_open_connections falls back to 0.
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "localhost"},
		},
		// The driver counts 301/302 as answers; following them would add requests.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	env := map[string]string{
		"BACKEND_URL":   opts.BackendURL,
		"TLS_CERT_FILE": tr.CertFile,
		"TLS_KEY_FILE":  tr.KeyFile,
	}
	if opts.DeadBackendURL != "" {
		env["DEAD_BACKEND_URL"] = opts.DeadBackendURL
	}
	tr.env = childEnv(env)
	if err := tr.Start(ctx); err != nil {
		_ = tr.Stop()
		return nil, err
	}
	return tr, nil
}

// StartTraefik launches Traefik for a test and stops it at the end; on
// failure the end of its log is printed.
func StartTraefik(t testing.TB, opts TraefikOptions) *Traefik {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Root == "" {
		root, err := RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		opts.Root = root
	}
	tr, err := LaunchTraefik(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", tr.name, tail(tr.LogPath, 40))
		}
		if err := tr.Stop(); err != nil {
			t.Errorf("stop %s: %v", tr.name, err)
		}
	})
	return tr
}

// Start runs Traefik (again, after Stop: same ports, same configuration) and
// waits until it serves its dynamic configuration.
func (tr *Traefik) Start(ctx context.Context) error {
	if tr.proc != nil {
		if gone, _ := tr.proc.exited(); !gone {
			return fmt.Errorf("%s is already running", tr.name)
		}
	}
	proc, err := startProcess(tr.name, tr.LogPath, filepath.Dir(tr.configPath), tr.env, tr.binary, "--configFile="+tr.configPath)
	if err != nil {
		return err
	}
	tr.proc = proc
	return tr.waitReady(ctx, 60*time.Second)
}

// Stop ends Traefik with SIGTERM; its counters are gone with it.
func (tr *Traefik) Stop() error {
	if tr.proc == nil {
		return nil
	}
	return tr.proc.stop(15 * time.Second)
}

// Client is an HTTP client for the entrypoints: it trusts the websecure
// certificate, opens one connection per request and does not follow redirects.
func (tr *Traefik) Client() *http.Client { return tr.client }

// Metrics reads Traefik's Prometheus endpoint.
func (tr *Traefik) Metrics(ctx context.Context) (Samples, error) {
	return Scrape(ctx, tr.client, tr.MetricsURL)
}

// waitReady waits for a health-checked server to be up: the dynamic
// configuration (routers, services, certificate) is then in place. It sends
// no request through an entrypoint, so the counters stay untouched.
func (tr *Traefik) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		if gone, err := tr.proc.exited(); gone {
			return fmt.Errorf("%s exited during start (%v); log:\n%s", tr.name, err, tail(tr.LogPath, 20))
		}
		s, err := tr.Metrics(ctx)
		switch {
		case err != nil:
			last = err
		case s.Sum("traefik_config_reloads_total", nil) < 1:
			last = errors.New("no configuration loaded yet")
		case s.Sum("traefik_service_server_up", nil) < 1:
			last = errors.New("no health-checked server is up yet")
		default:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v; log:\n%s", tr.name, limit, last, tail(tr.LogPath, 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeStaticConfig copies the static configuration to dst with the file
// provider pointed at dynamic and, when freePorts, every entrypoint moved to
// a free loopback port. It returns the entrypoint addresses.
func writeStaticConfig(src, dst, dynamic string, freePorts bool) (map[string]string, error) {
	raw, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	eps, _ := doc["entryPoints"].(map[string]any)
	names := make([]string, 0, len(eps))
	for name := range eps {
		names = append(names, name)
	}
	sort.Strings(names)
	addrs := map[string]string{}
	for _, name := range names {
		ep, ok := eps[name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: entrypoint %s is not a mapping", src, name)
		}
		addr, _ := ep["address"].(string)
		if freePorts {
			if addr, err = FreeAddr(); err != nil {
				return nil, err
			}
			ep["address"] = addr
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%s: entrypoint %s: %w", src, name, err)
		}
		addrs[name] = addr
	}
	providers, _ := doc["providers"].(map[string]any)
	file, _ := providers["file"].(map[string]any)
	if file == nil {
		return nil, fmt.Errorf("%s: no providers.file", src)
	}
	file["filename"] = dynamic
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return addrs, os.WriteFile(dst, out, 0o644)
}

// EntrypointAddresses reads the entrypoint addresses of a static configuration
// file, so a program can check they are free before starting Traefik.
func EntrypointAddresses(staticConfig string) (map[string]string, error) {
	raw, err := os.ReadFile(staticConfig)
	if err != nil {
		return nil, err
	}
	var doc struct {
		EntryPoints map[string]struct {
			Address string `yaml:"address"`
		} `yaml:"entryPoints"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", staticConfig, err)
	}
	out := map[string]string{}
	for name, ep := range doc.EntryPoints {
		out[name] = ep.Address
	}
	return out, nil
}

// writeSelfSignedCert writes a certificate for localhost and 127.0.0.1.
func writeSelfSignedCert(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}
