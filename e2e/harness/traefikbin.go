package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TraefikVersion is the Traefik the suite runs against. e2e/tools/go.mod pins
// the same version; change both together.
const TraefikVersion = "v3.6.12"

const traefikPackage = "github.com/traefik/traefik/v3/cmd/traefik"

// TraefikBinary returns the path of the pinned Traefik, building it from the
// e2e/tools module into e2e/.cache the first time (minutes on two cores; the
// build output goes to progress when it is not nil). A lock file keeps two
// test processes from building it at once.
func TraefikBinary(ctx context.Context, root string, progress io.Writer) (string, error) {
	cache := filepath.Join(root, "e2e", ".cache")
	bin := filepath.Join(cache, "traefik-"+TraefikVersion)
	if fileExists(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, "traefik.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock the Traefik build: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if fileExists(bin) { // built by whoever held the lock before us
		return bin, nil
	}

	tmp := bin + ".tmp"
	start := time.Now()
	var out bytes.Buffer
	w := io.Writer(&out)
	if progress != nil {
		fmt.Fprintf(progress, "building Traefik %s (a few minutes the first time)...\n", TraefikVersion)
		w = io.MultiWriter(&out, progress)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, traefikPackage)
	cmd.Dir = filepath.Join(root, "e2e", "tools")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("build Traefik %s in e2e/tools: %w\n%s", TraefikVersion, err, out.String())
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	if progress != nil {
		fmt.Fprintf(progress, "built Traefik %s in %s: %s\n", TraefikVersion, time.Since(start).Round(time.Second), bin)
	}
	return bin, nil
}

// NeedTraefik returns the pinned Traefik binary for a test, building it if
// needed; when it cannot be had the test is skipped (failed under
// TIB_REQUIRE_REAL=1).
func NeedTraefik(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := TraefikBinary(t.Context(), root, nil)
	if err != nil {
		Unavailable(t, "no Traefik %s binary: %v", TraefikVersion, err)
	}
	return bin
}
