package harness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RequireReal reports whether a missing real server must fail a test instead
// of skipping it. CI sets TIB_REQUIRE_REAL=1.
func RequireReal() bool { return os.Getenv("TIB_REQUIRE_REAL") == "1" }

// Unavailable ends t because something real (a binary, a server) cannot be
// had: a skip on a developer machine, a failure under TIB_REQUIRE_REAL=1.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if RequireReal() {
		t.Fatalf("%s (TIB_REQUIRE_REAL=1, so this is a failure, not a skip)", msg)
	}
	t.Skip(msg)
}

// RepoRoot is the checkout the harness runs from: the nearest directory at or
// above the working directory holding examples/traefik/traefik.yml and go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "examples", "traefik", "traefik.yml")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no checkout (go.mod next to examples/traefik/traefik.yml) at or above the working directory")
		}
		dir = parent
	}
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
