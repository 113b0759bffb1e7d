package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// Limits on what is read of an answer: the message, and the rest drained so
// the connection can be reused.
const (
	maxErrorBody = 64 << 10
	maxDrain     = 1 << 20
)

// Writer sends line protocol to InfluxDB 1.x's /write, one attempt per call.
// It does not retry: it says through the error type what the answer means.
type Writer struct {
	client   *http.Client
	writeURL string
	username string
	password config.Secret // a Secret so no %v of a Writer can show it
	gzip     bool
	timeout  time.Duration
	// observe, when set, is told the outcome of each attempt.
	observe func(statusClass string, d time.Duration)
}

// WriterConfig is what a Writer needs; the sink builds it from config.InfluxDB.
type WriterConfig struct {
	URL             string // base URL of InfluxDB, may carry a path prefix
	Database        string
	RetentionPolicy string
	Precision       string
	Consistency     string
	Username        string
	Password        config.Secret
	Gzip            bool
	Timeout         time.Duration // per attempt
}

// NewWriter returns a Writer posting to cfg.URL + "/write" with client.
func NewWriter(cfg WriterConfig, client *http.Client) (*Writer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("influxdb.url: %w", err)
	}
	u = u.JoinPath("write")
	q := url.Values{"db": {cfg.Database}}
	if cfg.RetentionPolicy != "" {
		q.Set("rp", cfg.RetentionPolicy)
	}
	if cfg.Precision != "" {
		q.Set("precision", cfg.Precision)
	}
	if cfg.Consistency != "" {
		q.Set("consistency", cfg.Consistency)
	}
	u.RawQuery = q.Encode()
	return &Writer{
		client:   client,
		writeURL: u.String(),
		username: cfg.Username,
		password: cfg.Password,
		gzip:     cfg.Gzip,
		timeout:  cfg.Timeout,
	}, nil
}

// Encode returns the payload for raw line protocol: raw itself, or its gzip
// in buf when gzip is on. Encode once per batch and reuse it across retries.
func (w *Writer) Encode(raw []byte, buf *bytes.Buffer, zw *gzip.Writer) ([]byte, error) {
	if !w.gzip {
		return raw, nil
	}
	buf.Reset()
	zw.Reset(buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write makes one attempt to write payload (from Encode), which holds lines
// lines, under its own deadline. A nil error means every line was written.
// Otherwise the error is one of *PartialWriteError, *RejectedError,
// *TooLargeError or *RecoverableError, or the error of ctx.
func (w *Writer) Write(ctx context.Context, payload []byte, lines int) error {
	attemptCtx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, w.writeURL, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if w.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if w.username != "" || w.password != "" {
		req.SetBasicAuth(w.username, string(w.password))
	}
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		w.note("error", start)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// url.Error quotes the URL, which never holds credentials here.
		if attemptCtx.Err() != nil {
			err = fmt.Errorf("no answer within influxdb.timeout (%s): %w", w.timeout, err)
		}
		return &RecoverableError{err: err}
	}
	msg := readMessage(resp)
	w.note(strconv.Itoa(resp.StatusCode/100)+"xx", start)
	return classify(resp.StatusCode, resp.Header, msg, lines, time.Now())
}

func (w *Writer) note(class string, start time.Time) {
	if w.observe != nil {
		w.observe(class, time.Since(start))
	}
}

// readMessage returns InfluxDB's error message of an answer (the "error" of
// its JSON body, else the body's text), and drains and closes the body.
func readMessage(resp *http.Response) string {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	if len(body) == 0 {
		return ""
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(body))
}

var droppedRE = regexp.MustCompile(`dropped=(\d+)`)

// classify turns an answer into the Writer's error, per InfluxDB 1.x's
// answers (docs reference table, section 4).
func classify(code int, h http.Header, msg string, lines int, now time.Time) error {
	switch {
	case code/100 == 2:
		return nil
	case code == http.StatusBadRequest && strings.HasPrefix(msg, "partial write"):
		// "partial write: <reason> dropped=N". When the reason is lines that
		// did not parse, influxd reports dropped=0 and lists each such line as
		// "unable to parse '...'": those were dropped too.
		n := 0
		if m := droppedRE.FindStringSubmatch(msg); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		n += strings.Count(msg, "unable to parse '")
		return &PartialWriteError{Dropped: min(n, lines), Message: msg}
	case code == http.StatusBadRequest:
		return &RejectedError{Lines: lines, Message: msg}
	case code == http.StatusRequestEntityTooLarge:
		return &TooLargeError{Lines: lines, Message: msg}
	}
	se := &StatusError{Code: code, Message: msg}
	var after time.Duration
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		after = parseRetryAfter(h.Get("Retry-After"), now)
	}
	// 401/403, 404, other 4xx, 5xx: the data is good, the server or our
	// setup is not; keep it and try again.
	return &RecoverableError{err: se, retryAfter: after}
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 if absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// RecoverableError is a failed attempt worth repeating with the same data:
// network trouble, a timeout, 401/403, 404, 429, 5xx.
type RecoverableError struct {
	err error
	// retryAfter is the server's Retry-After, 0 if none.
	retryAfter time.Duration
}

func (e *RecoverableError) Error() string { return e.err.Error() }
func (e *RecoverableError) Unwrap() error { return e.err }

// RetryAfter is how long the server asked us to wait, 0 if it did not say.
func (e *RecoverableError) RetryAfter() time.Duration { return e.retryAfter }

// StatusError is an answer other than 2xx that is not about the data.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("influxdb answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("influxdb answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// DatabaseNotFound reports a 404 for a missing database.
func (e *StatusError) DatabaseNotFound() bool {
	return e.Code == http.StatusNotFound && strings.Contains(e.Message, "database not found")
}

// Auth reports a refusal of the credentials or of their privileges.
func (e *StatusError) Auth() bool {
	return e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden
}

// PartialWriteError is a 400 after which InfluxDB kept all but Dropped lines.
// Resending would not help.
type PartialWriteError struct {
	Dropped int
	Message string
}

func (e *PartialWriteError) Error() string {
	return fmt.Sprintf("influxdb dropped %d lines: %s", e.Dropped, e.Message)
}

// RejectedError is a 400 refusing the whole batch (it did not parse).
type RejectedError struct {
	Lines   int
	Message string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("influxdb rejected %d lines: %s", e.Lines, e.Message)
}

// TooLargeError is a 413: the payload is over the server's max-body-size.
type TooLargeError struct {
	Lines   int
	Message string
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("influxdb refused a batch of %d lines as too large (http max-body-size): %s", e.Lines, e.Message)
}
