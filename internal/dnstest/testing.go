package dnstest

import (
	"testing"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/childproc"
)

// RequireEnv names the variable that turns a missing dnsmasq from a skip into
// a failure; CI sets it to 1.
const RequireEnv = childproc.RequireEnv

// Require skips the test when dnsmasq is not found (see Find), or fails it
// when TIB_REQUIRE_REAL=1.
func Require(t testing.TB) {
	t.Helper()
	_, err := Find("")
	childproc.Require(t, "dnsmasq", err, "Debian: apt-get install dnsmasq-base")
}

// Start launches a server with hosts for one test and closes it in
// t.Cleanup. Without dnsmasq the test is skipped, or fails when
// TIB_REQUIRE_REAL=1. When the test failed, the tail of dnsmasq's log (every
// query it answered) is logged before cleanup.
func Start(t testing.TB, hosts Hosts) *Server {
	t.Helper()
	Require(t)
	s, err := Launch(t.Context(), hosts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	childproc.CloseAtCleanup(t, "dnsmasq", s.LogFile, s.Close)
	return s
}
