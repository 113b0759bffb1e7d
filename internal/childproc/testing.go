package childproc

import (
	"os"
	"testing"
)

// RequireEnv names the variable that turns a missing server binary from a
// skip into a failure; CI sets it to 1.
const RequireEnv = "TIB_REQUIRE_REAL"

// Require does nothing when lookErr, the error of looking the binary name up,
// is nil. Otherwise it skips t, or fails it when TIB_REQUIRE_REAL=1; hint, if
// not empty, tells in the failure how to install the binary.
func Require(t testing.TB, name string, lookErr error, hint string) {
	t.Helper()
	if lookErr == nil {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		if hint != "" {
			hint = " (" + hint + ")"
		}
		t.Fatalf("%s is required (%s=1) but not found: %v%s", name, RequireEnv, lookErr, hint)
		return // Fatalf of a stand-in TB may return
	}
	t.Skipf("%s not found, skipping (set %s=1 to fail instead): %v", name, RequireEnv, lookErr)
}

// CloseAtCleanup has t's cleanup call closeServer, first logging the tail of
// logFile when t failed: the lines that tell why are in the server's log.
// name is the server's, for the messages.
func CloseAtCleanup(t testing.TB, name, logFile string, closeServer func() error) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log tail (%s):\n%s", name, logFile, LogTail(logFile, 4096))
		}
		if err := closeServer(); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
	})
}
