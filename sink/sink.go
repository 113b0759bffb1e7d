// Package sink writes buffered line protocol to InfluxDB 1.x. It promises
// that a line leaves the buffer only once InfluxDB has answered for it: written,
// or refused for good (a partial write, a batch that does not parse, a single
// line over the server's body limit), each refusal counted and logged (the
// same refusal at most once a minute, with how many were not). Every
// other failure (network, timeout, 401/403, 404, 429, 5xx) keeps the data and
// retries with backoff; only a full buffer loses data, oldest first, counted.
package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// readyFill is the share of the buffer above which Ready fails.
const readyFill = 0.9

// Sink moves batches from a Queue to InfluxDB.
type Sink struct {
	q        Queue
	w        *Writer
	client   *http.Client
	baseURL  string
	database string
	username string
	password config.Secret
	createDB bool
	timeout  time.Duration
	maxLines int
	maxBytes int
	minBack  time.Duration
	maxBack  time.Duration
	randN    func(int64) int64
	log      *slog.Logger
	m        *selfMetrics
	refusals refusalLog

	sendMu sync.Mutex // one sender at a time: Run or Flush
	gzBuf  bytes.Buffer
	zw     *gzip.Writer

	stateMu    sync.Mutex
	up         bool
	downReason string // why InfluxDB is down; "" before the first answer
	downSince  time.Time
	lastErr    error
	retrying   bool      // a batch is failing: pings must not claim InfluxDB is fine
	wroteAt    time.Time // InfluxDB last answered a write
}

// New builds a sink writing what q holds to cfg.InfluxDB, with self-metrics
// registered on reg (nil: not exported). It reads influxdb.password_file and
// the TLS files now.
func New(cfg *config.Config, q Queue, reg *metrics.Registry, log *slog.Logger) (*Sink, error) {
	ic := cfg.InfluxDB
	password := ic.Password
	if ic.PasswordFile != "" {
		b, err := os.ReadFile(ic.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("influxdb.password_file: %w", err)
		}
		password = config.Secret(strings.TrimSpace(string(b)))
	}
	tlsConf, err := ic.TLS.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("influxdb.tls: %w", err)
	}
	if ic.TLS.InsecureSkipVerify {
		log.Warn("influxdb.tls.insecure_skip_verify is on: the InfluxDB server's certificate is not checked, so anyone on the path can read the credentials and the data", "url", ic.URL)
	}
	if strings.HasPrefix(ic.URL, "http://") && ic.Username != "" {
		log.Warn("influxdb credentials are sent over plain http; use an https url", "url", ic.URL)
	}
	level := ic.GzipLevel
	if level == 0 { // a config built without config.Default
		level = 5 // config.Default's, and what gzip.DefaultCompression means here
	}
	zw, err := gzip.NewWriterLevel(io.Discard, level)
	if err != nil {
		return nil, fmt.Errorf("influxdb.gzip_level: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	// No Client.Timeout: each attempt carries its own deadline (influxdb.timeout).
	client := &http.Client{Transport: tr}

	w, err := NewWriter(WriterConfig{
		URL:             ic.URL,
		Database:        ic.Database,
		RetentionPolicy: ic.RetentionPolicy,
		Precision:       ic.Precision,
		Consistency:     ic.Consistency,
		Username:        ic.Username,
		Password:        password,
		Gzip:            ic.Gzip,
		Timeout:         ic.Timeout,
	}, client)
	if err != nil {
		return nil, err
	}
	if reg == nil {
		reg = metrics.NewRegistry() // metrics kept but not exported
	}
	m, err := newMetrics(reg, q)
	if err != nil {
		return nil, fmt.Errorf("register self-metrics: %w", err)
	}
	w.observe = m.observe
	return &Sink{
		q:        q,
		w:        w,
		client:   client,
		baseURL:  ic.URL,
		database: ic.Database,
		username: ic.Username,
		password: password,
		createDB: ic.CreateDatabase,
		timeout:  ic.Timeout,
		maxLines: cfg.Batch.MaxLines,
		maxBytes: int(min(cfg.Batch.MaxBytes, 1<<40)),
		minBack:  cfg.Retry.MinBackoff,
		maxBack:  cfg.Retry.MaxBackoff,
		randN:    rand.Int64N,
		log:      log,
		m:        m,
		zw:       zw,
		refusals: refusalLog{now: time.Now},
	}, nil
}

// Run sends batches until ctx is done, then returns nil; the batch in flight
// at that moment stays in the queue for Flush. It returns an error only when
// the queue itself fails.
func (s *Sink) Run(ctx context.Context) error {
	for {
		b, err := s.q.Next(ctx, s.maxLines, s.maxBytes)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read buffer: %w", err)
		}
		if err := s.deliver(ctx, b); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// Flush sends what is queued until the queue is empty or ctx is done, for
// shutdown, after Run has returned (the two must not run at once). It says
// how many lines were left unwritten.
func (s *Sink) Flush(ctx context.Context) error {
	for {
		if s.q.Stats().Records == 0 {
			return nil
		}
		b, err := s.q.Next(ctx, s.maxLines, s.maxBytes)
		if err == nil {
			err = s.deliver(ctx, b)
		}
		if err != nil {
			return fmt.Errorf("flush: %d lines not written: %w", s.q.Stats().Lines, err)
		}
	}
}

// deliver sends b and commits it; it fails only when ctx is done (b stays
// queued) or the queue fails.
func (s *Sink) deliver(ctx context.Context, b Batch) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.send(ctx, b.Data, b.Lines); err != nil {
		return err
	}
	if err := s.q.Commit(b); err != nil {
		return fmt.Errorf("commit to buffer: %w", err)
	}
	return nil
}

// send writes data (lines lines) until InfluxDB has answered for every line,
// waiting between attempts. It returns only ctx's error.
func (s *Sink) send(ctx context.Context, data []byte, lines int) error {
	payload, err := s.w.Encode(data, &s.gzBuf, s.zw)
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	bo := backoff{min: s.minBack, max: s.maxBack, randN: s.randN}
	created := false
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.m.retries.Inc()
		}
		err := s.w.Write(ctx, payload, lines)
		var (
			partial  *PartialWriteError
			rejected *RejectedError
			tooLarge *TooLargeError
			retry    *RecoverableError
			status   *StatusError
		)
		switch {
		case err == nil:
			s.m.written.Add(float64(lines))
			s.answeredWrite()
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &partial):
			s.m.written.Add(float64(lines - partial.Dropped))
			s.m.queueAndDrops.drop(ReasonPartialWrite, partial.Dropped)
			s.answeredWrite()
			if note, ok := s.refusals.allow("partial", partial.Message); ok {
				s.log.Warn("influxdb dropped part of a batch; the rest is written"+note, "dropped", partial.Dropped, "lines", lines, "answer", truncate(partial.Message, 512))
			}
			return nil
		case errors.As(err, &rejected):
			s.m.queueAndDrops.drop(ReasonRejected, lines)
			s.answeredWrite()
			if note, ok := s.refusals.allow("rejected", rejected.Message); ok {
				s.log.Warn("influxdb rejected a batch; dropped"+note, "lines", lines, "answer", truncate(rejected.Message, 512), "sample", firstLine(data))
			}
			return nil
		case errors.As(err, &tooLarge):
			s.answeredWrite()
			if lines <= 1 {
				s.m.queueAndDrops.drop(ReasonTooLarge, lines)
				if note, ok := s.refusals.allow("too large", ""); ok {
					s.log.Warn("a single line is over influxdb's max-body-size; dropped"+note, "bytes", len(data), "sample", firstLine(data))
				}
				return nil
			}
			// If ctx ends between the halves, the whole batch stays queued
			// and the first half is sent again later: harmless, as a point
			// with the same series and timestamp overwrites itself.
			left, n := splitLines(data, lines)
			s.log.Debug("influxdb refused a batch as too large; sending it in halves", "lines", lines, "bytes", len(data))
			if err := s.send(ctx, left, n); err != nil {
				return err
			}
			return s.send(ctx, data[len(left):], lines-n)
		case errors.As(err, &status) && status.DatabaseNotFound() && s.createDB && !created:
			created = true
			if cerr := s.createDatabase(ctx); cerr != nil {
				err = fmt.Errorf("%w; creating it failed: %w", err, cerr)
			} else {
				s.log.Info("created the influxdb database", "database", s.database)
				continue
			}
		}
		if !errors.As(err, &retry) {
			// Not an answer the Writer knows: keep the data all the same.
			retry = &RecoverableError{err: err}
		}
		s.setDown(err, true)
		if err := wait(ctx, bo.next(retry.RetryAfter())); err != nil {
			return err
		}
	}
}

// splitLines returns the first half (by lines) of data and its line count.
func splitLines(data []byte, lines int) ([]byte, int) {
	half := lines / 2
	off, n := 0, 0
	for n < half {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break
		}
		off += i + 1
		n++
	}
	if n == 0 || off >= len(data) {
		// Fewer lines than counted: split by bytes at a newline anyway.
		i := bytes.IndexByte(data[:len(data)-1], '\n')
		if i < 0 {
			return data, lines
		}
		return data[:i+1], 1
	}
	return data[:off], n
}

// refusalEvery is the least time between two warnings for the same refusal.
// A field type conflict comes back with every scrape until someone changes
// the schema or the data; one warning a minute says as much as one a batch.
const refusalEvery = time.Minute

// maxRefusals bounds the refusals remembered; past it the oldest are
// forgotten, and a forgotten refusal warns again at its next occurrence.
const maxRefusals = 64

// refusalLog decides which refusals of lines are worth a warning: a refusal
// not seen before at once, the same again at most once per refusalEvery,
// saying how many were left out. Every dropped point is counted in the
// metrics whether or not it is logged.
type refusalLog struct {
	now  func() time.Time
	seen map[string]*refusal // by kind and answer; used under sendMu
}

type refusal struct {
	logged  time.Time // when it was last logged
	skipped int       // occurrences since, not logged
}

// The parts of InfluxDB's answers that change from one batch to the next
// for the same cause: the count of dropped lines and the lines quoted.
var (
	droppedCountRE = regexp.MustCompile(`dropped=\d+`)
	quotedLineRE   = regexp.MustCompile(`(?m)unable to parse '.*': `)
)

// allow says whether a refusal of this kind with this answer is to be logged
// now, and if so a note for the message on how many like it were not.
func (r *refusalLog) allow(kind, answer string) (note string, ok bool) {
	key := kind + "\x00" + quotedLineRE.ReplaceAllLiteralString(droppedCountRE.ReplaceAllLiteralString(answer, "dropped=N"), "unable to parse '…': ")
	now := r.now()
	if prev := r.seen[key]; prev != nil {
		if now.Sub(prev.logged) < refusalEvery {
			prev.skipped++
			return "", false
		}
		if prev.skipped > 0 {
			note = fmt.Sprintf(" (%d more since %s)", prev.skipped, prev.logged.Format(time.TimeOnly))
		}
		prev.logged, prev.skipped = now, 0
		return note, true
	}
	if r.seen == nil {
		r.seen = make(map[string]*refusal)
	}
	if len(r.seen) >= maxRefusals {
		oldest := ""
		for k, v := range r.seen {
			if oldest == "" || v.logged.Before(r.seen[oldest].logged) {
				oldest = k
			}
		}
		delete(r.seen, oldest)
	}
	r.seen[key] = &refusal{logged: now}
	return "", true
}

func firstLine(data []byte) string {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	}
	return truncate(string(data), 256)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// PingUnlessWritten pings InfluxDB unless it answered a write within the
// last d: readiness needs a recent answer, and while batches go out every
// interval a ping on top of them only costs a request.
func (s *Sink) PingUnlessWritten(ctx context.Context, d time.Duration) error {
	s.stateMu.Lock()
	recent := s.up && !s.wroteAt.IsZero() && time.Since(s.wroteAt) < d
	s.stateMu.Unlock()
	if recent {
		return nil
	}
	return s.Ping(ctx)
}

// Ping asks InfluxDB's /ping; when no batch is failing, the answer sets
// influxdb_up and Ready.
func (s *Sink) Ping(ctx context.Context) error {
	err := s.ping(ctx)
	s.stateMu.Lock()
	retrying := s.retrying
	s.stateMu.Unlock()
	if !retrying {
		if err != nil {
			s.setDown(err, false)
		} else {
			s.setUp()
		}
	}
	return err
}

func (s *Sink) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	u, err := url.JoinPath(s.baseURL, "ping")
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	s.auth(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	msg := readMessage(resp)
	if resp.StatusCode != http.StatusNoContent {
		return &StatusError{Code: resp.StatusCode, Message: msg}
	}
	return nil
}

// createDatabase runs CREATE DATABASE (which does nothing if it exists).
// Our own request rather than influxdb1-client's Query: that takes no
// context, and shutdown must not wait on it.
func (s *Sink) createDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	u, err := url.JoinPath(s.baseURL, "query")
	if err != nil {
		return err
	}
	form := url.Values{"q": {`CREATE DATABASE "` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s.database) + `"`}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.auth(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	msg := readMessage(resp)
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Code: resp.StatusCode, Message: msg}
	}
	// A statement error comes back as 200 with {"results":[{"error":...}]}.
	var r struct {
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
	}
	if json.Unmarshal([]byte(msg), &r) == nil {
		for _, res := range r.Results {
			if res.Error != "" {
				return errors.New(res.Error)
			}
		}
	}
	return nil
}

func (s *Sink) auth(req *http.Request) {
	if s.username != "" || s.password != "" {
		req.SetBasicAuth(s.username, string(s.password))
	}
}

// Ready is nil when InfluxDB answered the last write or ping and the buffer
// is below 90% of its cap; else it says why not.
func (s *Sink) Ready() error {
	st := s.q.Stats()
	if st.MaxBytes > 0 && float64(st.Bytes) >= readyFill*float64(st.MaxBytes) {
		return fmt.Errorf("buffer is %.0f%% full (%d of %d bytes)", 100*float64(st.Bytes)/float64(st.MaxBytes), st.Bytes, st.MaxBytes)
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	switch {
	case s.up:
		return nil
	case s.lastErr == nil:
		return errors.New("influxdb has not answered yet")
	default:
		return fmt.Errorf("influxdb unavailable (%s) since %s: %w", s.downReason, s.downSince.UTC().Format(time.RFC3339), s.lastErr)
	}
}

// setUp records a working InfluxDB and logs the recovery once.
// answeredWrite is setUp for an answer to a write.
func (s *Sink) answeredWrite() {
	s.stateMu.Lock()
	s.wroteAt = time.Now()
	s.stateMu.Unlock()
	s.setUp()
}

func (s *Sink) setUp() {
	s.stateMu.Lock()
	wasDown := !s.up && s.downReason != ""
	since := s.downSince
	s.up, s.retrying, s.downReason, s.lastErr = true, false, "", nil
	s.stateMu.Unlock()
	s.m.up.Set(1)
	if wasDown {
		s.log.Info("influxdb is answering again", "url", s.baseURL, "down_for", time.Since(since).Round(time.Millisecond))
	}
}

// setDown records a failure; it logs only when the reason changes. A failed
// write sets retrying, which only a later good answer to a write clears.
func (s *Sink) setDown(err error, retrying bool) {
	reason := failureReason(err)
	s.stateMu.Lock()
	changed := s.up || s.downReason != reason
	if s.up || s.downReason == "" {
		s.downSince = time.Now()
	}
	s.up, s.downReason, s.lastErr = false, reason, err
	s.retrying = s.retrying || retrying
	s.stateMu.Unlock()
	s.m.up.Set(0)
	if !changed {
		return
	}
	var st *StatusError
	switch {
	case errors.As(err, &st) && st.Auth():
		// Someone must act: the data waits until they do.
		s.log.Error("influxdb refuses the credentials or their privileges: check influxdb.username, influxdb.password or password_file, and that the user may WRITE to the database; data is kept and retried",
			"url", s.baseURL, "database", s.database, "username", s.username, "err", err)
	case errors.As(err, &st) && st.DatabaseNotFound():
		s.log.Error("influxdb database does not exist: create it, or allow influxdb.create_database with an admin user; data is kept and retried",
			"url", s.baseURL, "database", s.database, "err", err)
	case reason == "tls":
		s.log.Error("TLS handshake with influxdb failed: check influxdb.tls.ca_file and server_name against the server's certificate; data is kept and retried",
			"url", s.baseURL, "err", err)
	default:
		s.log.Warn("influxdb unavailable; data is kept and retried", "url", s.baseURL, "reason", reason, "err", err)
	}
}

// failureReason names a failure for logs and Ready, coarse enough that a
// flapping connection does not log on every attempt.
func failureReason(err error) string {
	var (
		st      *StatusError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
		alert   tls.AlertError
		rhe     tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &st):
		switch {
		case st.Code == http.StatusUnauthorized:
			return "unauthorized"
		case st.Code == http.StatusForbidden:
			return "forbidden"
		case st.DatabaseNotFound():
			return "database not found"
		}
		return fmt.Sprintf("http %d", st.Code)
	case errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid),
		errors.As(err, &verify), errors.As(err, &alert), errors.As(err, &rhe):
		return "tls"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "unreachable"
}
