package harness

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// WebSocket sessions are traffic the standard mix lacks, and Traefik counts
// them unlike any other request: Traefik v3.6.12 counts an upgraded
// connection with code 0, not 101. The dashboards test sends some, so the
// status-class panel is checked to show them.

// webSocketGUID is the constant of RFC 6455, section 1.3.
const webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// LaunchWebSocketBackend is LaunchBackend with one more answer: a request
// whose path ends in /websocket and that asks to upgrade to WebSocket gets
// 101 Switching Protocols, after which the backend closes the connection (the
// shortest WebSocket session there is). Everything else is answered as the
// standard backend answers it.
func LaunchWebSocketBackend(addr string) (*Backend, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/websocket") && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			switchProtocols(w, r)
			return
		}
		serveBackend(w, r)
	})
	b := &Backend{
		URL: "http://" + ln.Addr().String(),
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second},
	}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// StartWebSocketBackend launches a WebSocket backend that stops with the test.
func StartWebSocketBackend(t testing.TB) *Backend {
	t.Helper()
	b, err := LaunchWebSocketBackend("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func switchProtocols(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" {
		http.Error(w, "no Sec-WebSocket-Key", http.StatusBadRequest)
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	sum := sha1.Sum([]byte(key + webSocketGUID))
	fmt.Fprintf(buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	_ = buf.Flush()
}

// SendWebSocket opens n WebSocket sessions through Traefik's plain entrypoint
// at path, each of which the backend ends right after the 101. It checks the
// status and the accept key, and returns how many were answered.
func SendWebSocket(ctx context.Context, tr *Traefik, path string, n int) (int, error) {
	addr := strings.TrimPrefix(tr.WebURL, "http://")
	for i := range n {
		if err := openWebSocket(ctx, addr, path); err != nil {
			return i, err
		}
	}
	return n, nil
}

// openWebSocket speaks the handshake on a connection of its own: an
// http.Client would take the 101 as a response to follow up, not as the end
// of HTTP on that connection.
func openWebSocket(ctx context.Context, addr, path string) error {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	key := base64.StdEncoding.EncodeToString([]byte("e2e-dashboards-k"))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		path, addr, key)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return fmt.Errorf("websocket %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("websocket %s: status %d, want 101", path, resp.StatusCode)
	}
	sum := sha1.Sum([]byte(key + webSocketGUID))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("websocket %s: accept key %q, want %q", path, got, want)
	}
	// The backend closed its side; Traefik closes ours once it has relayed that.
	_, err = io.Copy(io.Discard, conn)
	return err
}
