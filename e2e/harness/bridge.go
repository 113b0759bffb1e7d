package harness

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Names of the bridge's own metrics the harness waits on.
const (
	metricScrapes     = "traefik_influxdb_bridge_scrapes_total"
	metricBufferBytes = "traefik_influxdb_bridge_buffer_bytes"
	metricDropped     = "traefik_influxdb_bridge_points_dropped_total"
)

// BuildBridge compiles cmd/traefik-influxdb-bridge of the checkout at root
// into dir and returns the binary's path.
func BuildBridge(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "traefik-influxdb-bridge")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/traefik-influxdb-bridge")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the bridge: %w\n%s", err, out.String())
	}
	return bin, nil
}

var bridgeBuild struct {
	sync.Mutex
	bin string
}

// NeedBridge builds the bridge once per test binary and returns its path. A
// bridge that does not build fails the test: it is the code under test.
func NeedBridge(t testing.TB) string {
	t.Helper()
	bridgeBuild.Lock()
	defer bridgeBuild.Unlock()
	if bridgeBuild.bin != "" {
		return bridgeBuild.bin
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: the binary serves every test of the run. Rebuilt each
	// run (seconds, from Go's build cache) so it is always the checkout's code.
	dir := filepath.Join(root, "e2e", ".cache", "bridge")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := BuildBridge(t.Context(), root, dir)
	if err != nil {
		t.Fatal(err)
	}
	bridgeBuild.bin = bin
	return bin
}

// BridgeOptions describe one bridge process.
type BridgeOptions struct {
	Binary string
	// Config is the YAML file given with --config (one of examples/bridge).
	Config string
	// Env are TIB_* overrides of the file; TIB_LISTEN is set by the harness.
	Env map[string]string
	// Dir holds the log.
	Dir string
	// Listen is the address of /metrics; "" picks a free loopback port.
	Listen string
	// Name tells bridges apart in logs; "bridge" when empty.
	Name string
}

// Bridge is a running bridge process.
type Bridge struct {
	// URL is the base of /metrics, /healthz and /readyz.
	URL     string
	LogPath string

	name   string
	proc   *process
	client *http.Client
}

// LaunchBridge starts the bridge and waits until /healthz answers.
func LaunchBridge(ctx context.Context, opts BridgeOptions) (*Bridge, error) {
	if opts.Name == "" {
		opts.Name = "bridge"
	}
	if opts.Listen == "" {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		opts.Listen = addr
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	env := map[string]string{}
	for k, v := range opts.Env {
		env[k] = v
	}
	env["TIB_LISTEN"] = opts.Listen
	b := &Bridge{
		URL:     "http://" + opts.Listen,
		LogPath: filepath.Join(opts.Dir, opts.Name+".log"),
		name:    opts.Name,
		client:  &http.Client{Timeout: 5 * time.Second},
	}
	proc, err := startProcess(opts.Name, b.LogPath, opts.Dir, childEnv(env), opts.Binary, "--config="+opts.Config)
	if err != nil {
		return nil, err
	}
	b.proc = proc
	if err := b.waitHealthy(ctx, 30*time.Second); err != nil {
		_ = b.Stop()
		return nil, err
	}
	return b, nil
}

// StartBridge launches a bridge for a test and stops it at the end; on
// failure the end of its log is printed.
func StartBridge(t testing.TB, opts BridgeOptions) *Bridge {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	b, err := LaunchBridge(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", b.name, tail(b.LogPath, 40))
		}
		if err := b.Stop(); err != nil {
			t.Errorf("stop %s: %v", b.name, err)
		}
	})
	return b
}

// Stop sends SIGTERM and waits for the final flush.
func (b *Bridge) Stop() error { return b.proc.stop(30 * time.Second) }

// Metrics reads the bridge's /metrics.
func (b *Bridge) Metrics(ctx context.Context) (Samples, error) {
	return Scrape(ctx, b.client, b.URL+"/metrics")
}

// Progress is what the harness watches on a bridge.
type Progress struct {
	// Scrapes counts scrapes of each target by result ("success" or other).
	Scrapes map[string]map[string]float64
	// BufferBytes is what waits to be written, the batch in flight included.
	BufferBytes float64
	// Dropped counts points the bridge gave up on, whatever the reason.
	Dropped float64
}

// Succeeded is the number of successful scrapes of target.
func (p Progress) Succeeded(target string) float64 { return p.Scrapes[target]["success"] }

// Failed is the number of failed scrapes of target.
func (p Progress) Failed(target string) float64 {
	var n float64
	for result, v := range p.Scrapes[target] {
		if result != "success" {
			n += v
		}
	}
	return n
}

// Progress reads the bridge's scrape counters and buffer size.
func (b *Bridge) Progress(ctx context.Context) (Progress, error) {
	s, err := b.Metrics(ctx)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{Scrapes: map[string]map[string]float64{}}
	for _, v := range s {
		switch v.Name {
		case metricScrapes:
			target := v.Labels["target"]
			if p.Scrapes[target] == nil {
				p.Scrapes[target] = map[string]float64{}
			}
			p.Scrapes[target][v.Labels["result"]] += v.Value
		case metricBufferBytes:
			p.BufferBytes += v.Value
		case metricDropped:
			p.Dropped += v.Value
		}
	}
	return p, nil
}

// WaitFor polls the bridge's progress until cond holds or limit passes.
func (b *Bridge) WaitFor(ctx context.Context, limit time.Duration, what string, cond func(Progress) bool) (Progress, error) {
	deadline := time.Now().Add(limit)
	for {
		if gone, err := b.proc.exited(); gone {
			return Progress{}, fmt.Errorf("%s exited (%v) while waiting for %s; log:\n%s", b.name, err, what, tail(b.LogPath, 20))
		}
		p, err := b.Progress(ctx)
		if err == nil && cond(p) {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("%s: no %s after %s (last progress %+v, err %v); log:\n%s", b.name, what, limit, p, err, tail(b.LogPath, 20))
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitScrapes waits until every target has n more successful scrapes than
// it had when the call began.
func (b *Bridge) WaitScrapes(ctx context.Context, limit time.Duration, n int, targets ...string) error {
	start, err := b.Progress(ctx)
	if err != nil {
		return err
	}
	_, err = b.WaitFor(ctx, limit, fmt.Sprintf("%d more successful scrapes of %v", n, targets), func(p Progress) bool {
		for _, t := range targets {
			if p.Succeeded(t) < start.Succeeded(t)+float64(n) {
				return false
			}
		}
		return true
	})
	return err
}

// WaitDrained waits until the buffer is empty.
func (b *Bridge) WaitDrained(ctx context.Context, limit time.Duration) error {
	_, err := b.WaitFor(ctx, limit, "empty buffer", func(p Progress) bool { return p.BufferBytes == 0 })
	return err
}

func (b *Bridge) waitHealthy(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if gone, err := b.proc.exited(); gone {
			return fmt.Errorf("%s exited during start (%v); log:\n%s", b.name, err, tail(b.LogPath, 20))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := b.client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: /healthz not OK after %s; log:\n%s", b.name, limit, tail(b.LogPath, 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
