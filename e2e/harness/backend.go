package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Backend is the plain HTTP server behind Traefik. It answers by path, so the
// traffic driver decides the status code of each request:
//
//	.../status/NNN  answers NNN (301 and 302 with a Location)
//	.../slow/MS     waits MS milliseconds, then answers 200
//	/healthz        200, for Traefik's health check
//	anything else   200
//
// Request bodies are read to the end; every answer has a small text body.
type Backend struct {
	URL string
	srv *http.Server
}

// LaunchBackend serves on addr ("" picks a free loopback port).
func LaunchBackend(addr string) (*Backend, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	b := &Backend{
		URL: "http://" + ln.Addr().String(),
		srv: &http.Server{Handler: http.HandlerFunc(serveBackend), ReadHeaderTimeout: 5 * time.Second},
	}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// StartBackend launches a backend that stops with the test.
func StartBackend(t testing.TB) *Backend {
	t.Helper()
	b, err := LaunchBackend("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// Close stops the backend.
func (b *Backend) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func serveBackend(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	status := http.StatusOK
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	for i := 0; i+1 < len(parts); i++ {
		n, err := strconv.Atoi(parts[i+1])
		if err != nil {
			continue
		}
		switch parts[i] {
		case "status":
			if n >= 200 && n <= 599 {
				status = n
			}
		case "slow":
			if n > 0 && n <= 10000 {
				select {
				case <-time.After(time.Duration(n) * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
		}
	}
	if status == http.StatusMovedPermanently || status == http.StatusFound {
		w.Header().Set("Location", "/api/hello")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if status != http.StatusNoContent && status != http.StatusNotModified {
		fmt.Fprintf(w, "backend: %s %s -> %d\n", r.Method, r.URL.Path, status)
	}
}
