package influxtest

import (
	"os/exec"
	"testing"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/childproc"
)

// RequireEnv names the variable that turns a missing influxd from a skip into
// a failure; CI sets it to 1.
const RequireEnv = childproc.RequireEnv

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
	_, err := exec.LookPath(binary)
	childproc.Require(t, "influxd", err, "")
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
	childproc.CloseAtCleanup(t, "influxd", s.LogFile, s.Close)
	return s
}
