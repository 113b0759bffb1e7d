package deploytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// repoRoot is the checkout this module lives in (deploytest/..).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Dir(filepath.Dir(file))
}

// requireReal skips the test with why, unless TIB_REQUIRE_REAL=1 asks that
// everything a test needs be present, in which case it fails.
func requireReal(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("TIB_REQUIRE_REAL") == "1" {
		t.Fatalf("TIB_REQUIRE_REAL=1 but %s", why)
	}
	t.Skip(why)
}

// run runs a command and returns its standard output; on failure the test
// stops with the command's standard error.
func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	out, stderr, err := tryRun(dir, env, name, args...)
	require.NoError(t, err, "%s %v:\n%s", name, args, stderr)
	return out
}

func tryRun(dir string, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	return runEnv(dir, append(os.Environ(), env...), name, args...)
}

// runEnv runs a command with exactly the environment env.
func runEnv(dir string, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// bridgeBinary builds the bridge from the root module once per test binary,
// or skips (fails under TIB_REQUIRE_REAL=1) while cmd/ is not there yet.
func bridgeBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "cmd", "traefik-influxdb-bridge", "main.go")); err != nil {
		requireReal(t, "cmd/traefik-influxdb-bridge is not in this checkout yet, so the rendered config cannot be checked with --check-config")
	}
	bridgeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tib-bridge-")
		if err != nil {
			bridgeErr = err
			return
		}
		bridgePath = filepath.Join(dir, "traefik-influxdb-bridge")
		cmd := exec.Command("go", "build", "-C", root, "-o", bridgePath, "./cmd/traefik-influxdb-bridge")
		out, err := cmd.CombinedOutput()
		if err != nil {
			bridgeErr = &buildError{err: err, out: out}
		}
	})
	require.NoError(t, bridgeErr)
	return bridgePath
}
