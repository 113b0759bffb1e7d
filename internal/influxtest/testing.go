package influxtest

import (
	"os"
	"os/exec"
	"testing"
)

// RequireEnv names the variable that turns a missing influxd from a skip into
// a failure; CI sets it to 1.
const RequireEnv = "TIB_REQUIRE_REAL"

// Option changes the Options of Start.
type Option func(*Options)

// WithoutTLS serves plain HTTP.
func WithoutTLS() Option { return func(o *Options) { o.NoTLS = true } }

// WithoutAuth turns authentication off.
func WithoutAuth() Option { return func(o *Options) { o.NoAuth = true } }

// WithMaxBodySize sets [http] max-body-size in bytes.
func WithMaxBodySize(n int) Option { return func(o *Options) { o.MaxBodySize = n } }

// WithOptions replaces every option at once.
func WithOptions(opts Options) Option { return func(o *Options) { *o = opts } }

// Require skips the test when binary (empty: "influxd") is not on PATH, or
// fails it when TIB_REQUIRE_REAL=1.
func Require(t testing.TB, binary string) {
	t.Helper()
	if binary == "" {
		binary = "influxd"
	}
	if _, err := exec.LookPath(binary); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("influxd is required (%s=1) but not found: %v", RequireEnv, err)
		}
		t.Skipf("influxd not found, skipping (set %s=1 to fail instead): %v", RequireEnv, err)
	}
}

// Start launches a server for one test and closes it in t.Cleanup. Without
// influxd on PATH the test is skipped, or fails when TIB_REQUIRE_REAL=1. When
// the test failed, the tail of influxd's log is logged before cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	Require(t, o.Binary)
	s, err := Launch(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("influxd log tail (%s):\n%s", s.LogFile, s.LogTail(4096))
		}
		if err := s.Close(); err != nil {
			t.Errorf("influxtest: close: %v", err)
		}
	})
	return s
}
