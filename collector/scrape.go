package collector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// Scraper fetches Traefik's metrics page over HTTP(S) with the
// authentication, TLS setup, deadline and size limit of a config.Traefik. It
// is safe for concurrent use; each goroutine passes its own buffer.
type Scraper struct {
	client    *http.Client
	transport *http.Transport
	timeout   time.Duration
	maxBody   int64
	header    http.Header // extra headers, fixed at construction
	host      string      // a "Host" header, which net/http takes from req.Host
	username  string
	password  string
	bearer    string
	gzip      string    // traefik.gzip
	accept    string    // the Accept header, from traefik.format
	gzips     sync.Pool // *gzip.Reader
}

// StatusError is a scrape answered with a status other than 2xx.
type StatusError struct {
	Code   int
	Status string
}

func (e *StatusError) Error() string { return "unexpected HTTP status " + e.Status }

// TooLargeError is a body (after decompression) over traefik.max_body.
type TooLargeError struct {
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("body larger than traefik.max_body (%s)", config.Size(e.Limit))
}

// The Accept headers of traefik.format. acceptText asks for the text format
// only. acceptProtobuf prefers the delimited protobuf format, which costs
// less CPU to parse, and takes text from a target that has nothing else; the
// weights are those Prometheus and Telegraf send.
const (
	acceptText     = "text/plain;version=0.0.4"
	acceptProtobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7," +
		"text/plain;version=0.0.4;q=0.3"
)

// Format is the exposition format of a scraped page, told by its
// Content-Type.
type Format int

// The formats a page is read in.
const (
	FormatText     Format = iota // text/plain, or no Content-Type: Parser
	FormatProtobuf               // delimited io.prometheus.client.MetricFamily: ProtoParser
)

func (f Format) String() string {
	if f == FormatProtobuf {
		return "protobuf"
	}
	return "text"
}

// ContentTypeError is a page in a format the bridge does not read
// (OpenMetrics, say, or protobuf in another encoding).
type ContentTypeError struct {
	ContentType string
}

func (e *ContentTypeError) Error() string {
	return fmt.Sprintf("content type %q is neither the text format nor delimited protobuf", e.ContentType)
}

// pageFormat tells the format of a page by its Content-Type, as expfmt's
// ResponseFormat does for the two formats the bridge reads, except that
// text/plain of any version is text (the text parser reads the quoted names
// version 1.0.0 adds, and refuses those that are not legacy names); a page
// without a Content-Type is text, the format's default.
func pageFormat(contentType string) (Format, error) {
	if strings.TrimSpace(contentType) == "" {
		return FormatText, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, &ContentTypeError{ContentType: contentType}
	}
	switch mt {
	case "text/plain":
		return FormatText, nil
	case "application/vnd.google.protobuf":
		if params["proto"] == "io.prometheus.client.MetricFamily" && params["encoding"] == "delimited" {
			return FormatProtobuf, nil
		}
	}
	return 0, &ContentTypeError{ContentType: contentType}
}

// NewScraper builds a scraper with its own transport. It reads the CA,
// client certificate, password and token files now, so a missing file fails
// at start rather than at every scrape.
func NewScraper(cfg config.Traefik) (*Scraper, error) {
	tlsCfg, err := cfg.TLS.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("traefik.tls: %w", err)
	}
	s := &Scraper{
		timeout:  cfg.Timeout,
		maxBody:  int64(cfg.MaxBody),
		header:   http.Header{},
		username: cfg.Username,
		password: string(cfg.Password),
		bearer:   string(cfg.BearerToken),
		gzip:     cfg.Gzip,
		accept:   acceptProtobuf,
	}
	if cfg.Format == config.FormatText {
		s.accept = acceptText
	}
	if s.timeout <= 0 {
		return nil, errors.New("traefik.timeout: must be positive")
	}
	if s.maxBody <= 0 {
		return nil, errors.New("traefik.max_body: must be positive")
	}
	if cfg.PasswordFile != "" {
		if s.password, err = readSecretFile(cfg.PasswordFile); err != nil {
			return nil, fmt.Errorf("traefik.password_file: %w", err)
		}
	}
	if cfg.BearerTokenFile != "" {
		if s.bearer, err = readSecretFile(cfg.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("traefik.bearer_token_file: %w", err)
		}
	}
	if s.bearer != "" && (s.username != "" || s.password != "") {
		return nil, errors.New("traefik: a bearer token cannot be combined with a username/password")
	}
	for k, v := range cfg.Headers {
		if strings.EqualFold(k, "Host") {
			s.host = v
			continue
		}
		s.header.Set(k, v)
	}
	s.transport = &http.Transport{
		// No proxy: the bridge scrapes a Traefik next to it, and an
		// HTTP(S)_PROXY meant for other traffic must not capture that.
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   cfg.Timeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: cfg.Timeout,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		// Decompression is ours, so that max_body bounds the decompressed
		// size and the gzip reader is reused.
		DisableCompression: true,
	}
	s.client = &http.Client{Transport: s.transport}
	return s, nil
}

// asksGzip says whether a scrape of u asks for a gzipped page. With
// traefik.gzip auto (or unset) it does unless u's host is a loopback
// address: Traefik compresses every gzip scrape at the default level, about
// 10 ms of its CPU for a 20-service page, to save bytes that never leave the
// machine. A host name other than localhost is not resolved here; it gets
// gzip.
func (s *Scraper) asksGzip(u *url.URL) bool {
	switch s.gzip {
	case config.GzipAlways:
		return true
	case config.GzipNever:
		return false
	}
	return !isLoopback(u.Hostname())
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// readSecretFile reads a password or token file without its final line end.
// Its errors name the file, never the content.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// Close releases idle connections.
func (s *Scraper) Close() { s.transport.CloseIdleConnections() }

// Scrape fetches url and returns its body appended to buf[:0], so a caller
// that passes back the previous result reads the next page without
// allocating, and the body's format. It holds the whole page; the collector
// uses Stream instead. Errors are those of Stream.
func (s *Scraper) Scrape(ctx context.Context, url string, buf []byte) ([]byte, Format, error) {
	buf = buf[:0]
	var format Format
	err := s.Stream(ctx, url, func(body io.Reader, f Format) error {
		var err error
		format = f
		buf, err = readLimited(body, buf, s.maxBody)
		return err // named by the body: the URL, the limit or the deadline
	})
	if err != nil {
		return buf[:0], format, err
	}
	return buf, format, nil
}

// Stream fetches url and calls read with its body, decompressed, and its
// format, while the response is open: read sees the page as it arrives and
// need not hold it. A page in a format the bridge does not read is a
// *ContentTypeError; read is not called.
// The body fails with a *TooLargeError past traefik.max_body, with the error
// of the connection, or once traefik.timeout is spent. That deadline counts
// the time spent waiting for Traefik (connecting, the answer, each read of
// the body and its gunzipping), not the time read spends between reads, so
// that parsing a large page on a busy CPU is not a timeout where reading
// it whole first would not have been. Stream returns read's error as it
// is; its own errors are a *StatusError, a *TooLargeError, a
// *ContentTypeError or a transport error, and ErrorKind names all of them for
// a self-metric (a *ContentTypeError as "error"). They never
// carry credentials.
func (s *Scraper) Stream(ctx context.Context, url string, read func(body io.Reader, format Format) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := &waitBudget{left: s.timeout, cancel: cancel}
	w.timer = time.AfterFunc(s.timeout, func() { cancel(errWaitSpent) })
	w.since = time.Now()
	defer w.timer.Stop()
	timedOut := func(err error) error {
		if errors.Is(context.Cause(ctx), errWaitSpent) {
			return fmt.Errorf("scrape %s: %w", config.Redact(url), context.DeadlineExceeded)
		}
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("scrape %s: %w", config.Redact(url), err)
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	if s.host != "" {
		req.Host = s.host
	}
	req.Header.Set("Accept", s.accept)
	if s.asksGzip(req.URL) {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	req.Header.Set("User-Agent", "traefik-influxdb-bridge")
	switch {
	case s.bearer != "":
		req.Header.Set("Authorization", "Bearer "+s.bearer)
	case s.username != "" || s.password != "":
		req.SetBasicAuth(s.username, s.password)
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return timedOut(err) // *url.Error names the URL without its password
	}
	w.pause()
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("scrape %s: %w", config.Redact(url), &StatusError{Code: resp.StatusCode, Status: resp.Status})
	}
	format, err := pageFormat(resp.Header.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("scrape %s: %w", config.Redact(url), err)
	}

	var body io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, _ := s.gzips.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		w.resume()
		err := zr.Reset(resp.Body) // reads the gzip header
		w.pause()
		if err != nil {
			return timedOut(fmt.Errorf("scrape %s: gzip: %w", config.Redact(url), err))
		}
		defer s.gzips.Put(zr)
		body = zr
	} else if resp.ContentLength > s.maxBody {
		return fmt.Errorf("scrape %s: %w", config.Redact(url), &TooLargeError{Limit: s.maxBody})
	}
	return read(&limitedReader{r: &waitingReader{r: body, w: w, timedOut: timedOut}, left: s.maxBody, limit: s.maxBody}, format)
}

// errWaitSpent cancels a scrape whose traefik.timeout is spent.
var errWaitSpent = errors.New("traefik.timeout spent")

// waitBudget is the part of traefik.timeout not yet spent waiting: its
// timer runs only while the scrape waits for Traefik.
type waitBudget struct {
	left   time.Duration
	since  time.Time // when the timer was last started
	timer  *time.Timer
	cancel context.CancelCauseFunc
}

func (w *waitBudget) pause() {
	w.timer.Stop()
	w.left -= time.Since(w.since)
}

func (w *waitBudget) resume() {
	if w.left <= 0 {
		w.cancel(errWaitSpent)
		return
	}
	w.since = time.Now()
	w.timer.Reset(w.left)
}

// waitingReader runs the budget's timer during each read.
type waitingReader struct {
	r        io.Reader
	w        *waitBudget
	timedOut func(error) error
}

func (r *waitingReader) Read(p []byte) (int, error) {
	r.w.resume()
	n, err := r.r.Read(p)
	r.w.pause()
	if err != nil && err != io.EOF {
		err = r.timedOut(err)
	}
	return n, err
}

// limitedReader yields at most limit bytes of r and then, if r has more, a
// *TooLargeError.
type limitedReader struct {
	r           io.Reader
	left, limit int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	// One byte past the limit tells a body of exactly limit bytes from a
	// longer one.
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		n = int(l.left)
		l.left = 0
		return n, &TooLargeError{Limit: l.limit}
	}
	l.left -= int64(n)
	return n, err
}

// readLimited appends r to buf and fails with a *TooLargeError past limit.
func readLimited(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := buf[len(buf):cap(buf)]
		if over := int64(len(buf)) + int64(len(room)) - (limit + 1); over > 0 {
			room = room[:int64(len(room))-over]
		}
		n, err := r.Read(room)
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, &TooLargeError{Limit: limit}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// ErrorKind names the class of a Scrape error for a self-metric label: "ok",
// "timeout", "canceled", "connect", "tls", "http_4xx", "http_5xx" (and
// "http_3xx", "http_1xx"), "too_large" or "error".
func ErrorKind(err error) string {
	if err == nil {
		return "ok"
	}
	var se *StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("http_%dxx", se.Code/100)
	}
	var tl *TooLargeError
	if errors.As(err, &tl) {
		return "too_large"
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "timeout"
	}
	var (
		cv  *tls.CertificateVerificationError
		rh  tls.RecordHeaderError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		alt tls.AlertError
	)
	var op *net.OpError
	if errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &ua) || errors.As(err, &hn) ||
		errors.As(err, &ci) || errors.As(err, &alt) || (errors.As(err, &op) && op.Op == "remote error") {
		// "remote error" is an alert from the server: a client certificate
		// refused or missing, no common version or cipher.
		return "tls"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial") {
		return "connect"
	}
	return "error"
}
