package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Request is one request of the traffic mix and the status Traefik must give it.
type Request struct {
	// EntryPoint is "web" (plain) or "websecure" (TLS).
	EntryPoint string
	Method     string
	// Host overrides the Host header (for Host() rules); empty keeps the address.
	Host string
	Path string
	Body string
	// Status is the answer expected; any other answer stops the driver, since
	// it means the topology is not the one the test believes it runs.
	Status int
	// Times is how often the request is sent; 0 means once.
	Times int
}

// Mix is the standard traffic: every router of examples/traefik/dynamic.yml,
// plain and TLS, a mix of methods (an unknown verb included) and 2xx, 3xx,
// 4xx and 5xx answers, slow answers for the latency histograms, and a dead
// backend behind retries. scale multiplies the repeated requests, so two
// instances given different scales end with different counters.
func Mix(scale int) []Request {
	return []Request{
		{EntryPoint: "web", Method: http.MethodGet, Path: "/api/hello", Status: 200, Times: 4 * scale},
		{EntryPoint: "web", Method: http.MethodGet, Path: "/api/status/301", Status: 301},
		{EntryPoint: "web", Method: http.MethodGet, Path: "/api/status/302", Status: 302, Times: scale},
		{EntryPoint: "web", Method: http.MethodGet, Path: "/api/status/404", Status: 404, Times: 2 * scale},
		{EntryPoint: "web", Method: http.MethodPost, Path: "/api/status/201", Body: "name=e2e&n=1", Status: 201, Times: scale},
		{EntryPoint: "web", Method: http.MethodPost, Path: "/api/status/500", Body: "boom", Status: 500},
		{EntryPoint: "web", Method: http.MethodPut, Path: "/api/hello", Body: strings.Repeat("x", 100), Status: 200},
		{EntryPoint: "web", Method: http.MethodDelete, Path: "/api/status/204", Status: 204},
		{EntryPoint: "web", Method: http.MethodPatch, Path: "/api/status/503", Body: "{}", Status: 503},
		{EntryPoint: "web", Method: http.MethodHead, Path: "/api/hello", Status: 200},
		{EntryPoint: "web", Method: "PURGE", Path: "/api/hello", Status: 200},
		{EntryPoint: "web", Method: http.MethodGet, Path: "/api/slow/150", Status: 200, Times: 2},
		{EntryPoint: "web", Method: http.MethodGet, Path: "/api/slow/400", Status: 200},
		{EntryPoint: "web", Method: http.MethodGet, Host: "shop.example.com", Path: "/cart", Status: 200, Times: 2 * scale},
		{EntryPoint: "web", Method: http.MethodGet, Host: "shop.example.com", Path: "/status/404", Status: 404},
		{EntryPoint: "web", Method: http.MethodGet, Path: "/broken", Status: 502, Times: scale},
		// No router matches: Traefik answers 404 itself, counted on the entrypoint only.
		{EntryPoint: "web", Method: http.MethodGet, Path: "/nowhere", Status: 404},
		{EntryPoint: "websecure", Method: http.MethodGet, Path: "/secure/hello", Status: 200, Times: 3 * scale},
		{EntryPoint: "websecure", Method: http.MethodPost, Path: "/secure/status/201", Body: "tls body", Status: 201},
		// No TLS router serves /api: Traefik's own 404, counted (TLS included) on the entrypoint only.
		{EntryPoint: "websecure", Method: http.MethodGet, Path: "/api/status/404", Status: 404, Times: scale},
		{EntryPoint: "websecure", Method: http.MethodGet, Path: "/secure/status/500", Status: 500},
	}
}

// Count is the number of requests a mix sends.
func Count(mix []Request) int {
	n := 0
	for _, r := range mix {
		n += max(r.Times, 1)
	}
	return n
}

// Send sends every request of mix through tr, in order, and checks each
// answer's status. It returns how many requests were answered.
func Send(ctx context.Context, tr *Traefik, mix []Request) (int, error) {
	sent := 0
	for _, r := range mix {
		base := tr.WebURL
		if r.EntryPoint == "websecure" {
			base = tr.WebSecureURL
		}
		for range max(r.Times, 1) {
			if err := send(ctx, tr.Client(), base, r); err != nil {
				return sent, err
			}
			sent++
		}
	}
	return sent, nil
}

func send(ctx context.Context, client *http.Client, base string, r Request) error {
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, base+r.Path, body)
	if err != nil {
		return err
	}
	if r.Host != "" {
		req.Host = r.Host
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s%s: %w", r.Method, base, r.Path, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != r.Status {
		return fmt.Errorf("%s %s%s (Host %q): status %d, want %d", r.Method, base, r.Path, r.Host, resp.StatusCode, r.Status)
	}
	return nil
}
