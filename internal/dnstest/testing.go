package dnstest

import (
	"os"
	"testing"
)

// RequireEnv names the variable that turns a missing dnsmasq from a skip into
// a failure; CI sets it to 1.
const RequireEnv = "TIB_REQUIRE_REAL"

// Require skips the test when dnsmasq is not found (see Find), or fails it
// when TIB_REQUIRE_REAL=1.
func Require(t testing.TB) {
	t.Helper()
	if _, err := Find(""); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("dnsmasq is required (%s=1) but not found: %v (Debian: apt-get install dnsmasq-base)", RequireEnv, err)
		}
		t.Skipf("dnsmasq not found, skipping (set %s=1 to fail instead): %v", RequireEnv, err)
	}
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
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dnsmasq log tail (%s):\n%s", s.LogFile, s.LogTail(4096))
		}
		if err := s.Close(); err != nil {
			t.Errorf("dnstest: close: %v", err)
		}
	})
	return s
}
