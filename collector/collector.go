// Package collector scrapes Traefik's Prometheus endpoints and turns every
// scrape into InfluxDB 1.x line protocol in one of three schemas (see
// Converter), handing it to an Appender in bounded records. A target that
// fails is logged once per change of state and counted, never fatal.
//
// When the Appender is also a StateStore (a durable queue) and the schema is
// traefik, each scrape's lines go to it as one atomic group together with
// the target's counter state, and a target starts from the state saved
// last: after a restart the first scrape continues the deltas instead of
// being a new baseline, so what Traefik counted while the bridge was down is
// written once. A GroupStore takes the group's records as they are
// converted; another StateStore takes the scrape whole, in one
// AppendWithState call.
package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/metrics"
)

// resolver is the part of net.Resolver a dns+http:// URL needs.
type resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Collector scrapes every configured target each traefik.interval. Call
// Run or Once, not both at the same time: each target's buffers and
// converter belong to one scrape at a time.
type Collector struct {
	cfg *config.Config
	out Appender
	// store is out when it keeps state and the schema needs it; nil else.
	// groups is store when it takes a scrape a record at a time.
	store  StateStore
	groups GroupStore
	// keep is out handing records over with AppendOwned when out can keep
	// them (see ownedAppender); nil else.
	keep Appender
	// flushEvery is how much line protocol the converter builds up between
	// handing records over; tests lower it to hand over every few lines.
	flushEvery int
	// groupHold is how many bytes of lines a grouped scrape holds while
	// another target's group is open before it waits for that group.
	groupHold int
	log       *slog.Logger
	// fetch and errorKind are the Scraper's (Stream, ErrorKind); tests
	// replace them to drive the loop under testing/synctest, where real
	// sockets would stall the fake clock.
	fetch     func(ctx context.Context, url string, read func(body io.Reader, format Format) error) error
	errorKind func(error) string
	closeIdle func()
	resolver  resolver
	m         *selfMetrics
	sources   []*source
	// instanceTag is the tag key naming a target's host:port; "" when off.
	instanceTag string
	staticTags  map[string]string
}

// source is one configured URL: a single target, or for dns+http(s):// the
// targets its host name resolves to.
type source struct {
	raw    string
	u      *url.URL
	dns    bool
	label  string // raw without credentials, for logs
	badDNS string // last resolution error, "" when fine
	// resolved is when the host name last resolved; its targets with that
	// seen time are the live ones.
	resolved time.Time
	targets  map[string]*target
}

// target is one scraped endpoint with everything reused across scrapes.
type target struct {
	url      string
	label    string // url without credentials: the metrics' target label
	instance string // host:port
	conv     *Converter
	parser   *Parser      // pages in the text format
	proto    *ProtoParser // pages in protobuf; nil until the first one
	out      []byte
	m        targetMetrics
	// bad is the kind of the last failure, "" while healthy; logs are
	// written when it changes.
	bad       string
	appendBad bool
	// overLimit is set while scrapes have series over traefik.max_series.
	overLimit bool
	// seen is when a dns+ resolution last returned this address.
	seen time.Time
	// stateKey names the converter state in the StateStore; state is the
	// buffer it is marshalled into whole, reused across scrapes that are
	// not grouped, and statePiece the one it is marshalled through a piece
	// at a time for a group.
	stateKey   string
	state      []byte
	statePiece []byte
}

// New checks cfg and prepares every target; it scrapes nothing. Its
// self-metrics are registered on reg (nil: not exported).
func New(cfg *config.Config, out Appender, reg *metrics.Registry, log *slog.Logger) (*Collector, error) {
	sc, err := NewScraper(cfg.Traefik)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Collector{cfg: cfg, out: out, log: log, fetch: sc.Stream, errorKind: ErrorKind, closeIdle: sc.Close, resolver: net.DefaultResolver, m: m,
		flushEvery: defaultFlushEvery, groupHold: defaultGroupHold}
	if o, ok := out.(ownedAppender); ok {
		c.keep = owningAppender{o}
	}
	// Only the traefik schema writes deltas; the others are cumulative and
	// have nothing to carry over a restart.
	if store, ok := out.(StateStore); ok && cfg.Schema == config.SchemaTraefik {
		c.store = store
		c.groups, _ = store.(GroupStore)
	}

	c.staticTags = make(map[string]string, len(cfg.Tags)+1)
	if cfg.HostTag != "" {
		if h := hostname(); h != "" {
			c.staticTags[cfg.HostTag] = h
		} else {
			log.Warn("no host name for the host tag; points carry none", "host_tag", cfg.HostTag)
		}
	}
	// Configured tags are explicit, so they win over the host tag.
	for k, v := range cfg.Tags {
		c.staticTags[k] = v
	}
	anyDNS := false
	for _, raw := range cfg.Traefik.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("traefik.urls: %q: %w", config.Redact(raw), err)
		}
		s := &source{raw: raw, u: u, label: stripUserinfo(raw), targets: map[string]*target{}}
		if strings.HasPrefix(u.Scheme, "dns+") {
			s.dns = true
			anyDNS = true
		}
		c.sources = append(c.sources, s)
	}
	// With several Traefiks, the instance tag keeps their points apart; a
	// dns+ URL is several Traefiks even when it is the only URL.
	if cfg.InstanceTag != "" && (len(cfg.Traefik.URLs) > 1 || anyDNS) {
		c.instanceTag = cfg.InstanceTag
	}
	for _, s := range c.sources {
		if s.dns {
			continue
		}
		t, err := c.newTarget(s.raw, s.u.Host)
		if err != nil {
			return nil, err
		}
		s.targets[s.raw] = t
	}
	return c, nil
}

// hostname is the host tag's value: $HOSTNAME when set (a Kubernetes pod's
// name), else the kernel's host name.
func hostname() string {
	if h := os.Getenv("HOSTNAME"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

func (c *Collector) newTarget(rawURL, instance string) (*target, error) {
	tags := make(map[string]string, len(c.staticTags)+1)
	for k, v := range c.staticTags {
		tags[k] = v
	}
	// The instance tag is what keeps targets apart: it wins over a
	// configured tag of the same key.
	if c.instanceTag != "" {
		tags[c.instanceTag] = instance
	}
	conv, err := NewConverter(ConvertOptions{
		Schema:    c.cfg.Schema,
		Precision: config.PrecisionDuration(c.cfg.InfluxDB.Precision),
		Tags:      tags,
		URL:       rawURL,
		Include:   c.cfg.Metrics.Include,
		Exclude:   c.cfg.Metrics.Exclude,
		SeriesTTL: c.cfg.Traefik.SeriesTTL,
		MaxSeries: c.cfg.Traefik.MaxSeries,
	})
	if err != nil {
		return nil, err
	}
	label := stripUserinfo(rawURL)
	t := &target{
		url:      rawURL,
		label:    label,
		instance: instance,
		conv:     conv,
		parser:   NewParser(),
		m:        c.m.forTarget(label),
	}
	if c.store != nil {
		t.stateKey = stateKey(c.cfg, label, tags)
		c.loadState(t)
	}
	return t, nil
}

// stateKey names a target's saved state. It holds what decides the series
// keys and timestamps of the converter, besides the target: a state saved
// under other tags, families or precision would find none of its series (or
// misread its timestamp), and a series it does not know counts from zero, so
// every counter would be written whole as one increase. Under a new key the
// target starts with a baseline instead.
func stateKey(cfg *config.Config, label string, tags map[string]string) string {
	h := fnv.New64a()
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "tag %q=%q\n", k, tags[k])
	}
	for _, p := range cfg.Metrics.Include {
		fmt.Fprintf(h, "include %q\n", p)
	}
	for _, p := range cfg.Metrics.Exclude {
		fmt.Fprintf(h, "exclude %q\n", p)
	}
	return fmt.Sprintf("%s %s precision=%s config=%016x", cfg.Schema, label, cfg.InfluxDB.Precision, h.Sum64())
}

// loadState restores t's converter from the store. A state that cannot be
// read or decoded is logged and counted, and the target starts with a
// baseline, as without a state.
func (c *Collector) loadState(t *target) {
	b, err := c.store.LoadState(t.stateKey)
	if err != nil {
		c.m.stateErrors.WithLabelValues(t.label).Inc()
		c.log.Warn("cannot load the saved counter state; the first scrape is a baseline", "target", t.label, "err", err)
		return
	}
	if len(b) == 0 {
		return
	}
	if err := t.conv.UnmarshalState(b); err != nil {
		c.m.stateErrors.WithLabelValues(t.label).Inc()
		c.log.Warn("the saved counter state is damaged; the first scrape is a baseline", "target", t.label, "err", err)
		return
	}
	c.log.Info("counter state restored; the first scrape continues the increases", "target", t.label, "series", t.conv.stateSeries(), "bytes", len(b))
}

// Run scrapes every source concurrently, each on its own ticker aligned to
// traefik.interval, until ctx is done; it then returns nil. A scrape slower
// than the interval makes the next one start late, never two at once.
func (c *Collector) Run(ctx context.Context) error {
	defer c.closeIdle()
	var wg sync.WaitGroup
	for _, s := range c.sources {
		wg.Go(func() {
			tick := time.NewTicker(c.cfg.Traefik.Interval)
			defer tick.Stop()
			for {
				c.scrapeSource(ctx, s, time.Now(), nil)
				if ctx.Err() != nil {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// Once scrapes every target once and writes the line protocol to w; for the
// traefik schema, whose first scrape is a baseline without counters, it
// scrapes twice one interval apart and writes the second. It returns the
// targets' failures.
func (c *Collector) Once(ctx context.Context, w io.Writer) error {
	defer c.closeIdle()
	rounds := 1
	if c.cfg.Schema == config.SchemaTraefik {
		rounds = 2
	}
	var errs []error
	for r := range rounds {
		if r > 0 {
			t := time.NewTimer(c.cfg.Traefik.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		errs = errs[:0]
		var mu sync.Mutex
		var wg sync.WaitGroup
		now := time.Now()
		for _, s := range c.sources {
			wg.Go(func() {
				failed := c.scrapeSource(ctx, s, now, func(t *target, lp []byte) {
					if r < rounds-1 {
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if _, err := w.Write(lp); err != nil {
						errs = append(errs, fmt.Errorf("writing the output: %w", err))
					}
				})
				mu.Lock()
				errs = append(errs, failed...)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	return errors.Join(errs...)
}

// scrapeSource resolves s when it is a dns+ URL and scrapes its targets
// concurrently. emit, when set, also receives each target's line protocol.
func (c *Collector) scrapeSource(ctx context.Context, s *source, now time.Time, emit func(*target, []byte)) []error {
	var errs []error
	if s.dns {
		if err := c.resolve(ctx, s, now); err != nil {
			errs = append(errs, err)
		}
	}
	live := make([]*target, 0, len(s.targets))
	for _, t := range s.targets {
		// A dns+ address missing from the last resolution is kept for its
		// history only.
		if !s.dns || t.seen.Equal(s.resolved) {
			live = append(live, t)
		}
	}
	if len(live) == 1 {
		if err := c.scrape(ctx, live[0], now, emit); err != nil {
			errs = append(errs, err)
		}
		return errs
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range live {
		wg.Go(func() {
			if err := c.scrape(ctx, t, now, emit); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

// resolve brings s.targets in line with the addresses of its host name.
// An address that disappears keeps its converter (and so its counters'
// history) for traefik.series_ttl, in case the pod only left DNS while
// unready. When resolution fails the known addresses are scraped.
func (c *Collector) resolve(ctx context.Context, s *source, now time.Time) error {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Traefik.Timeout)
	defer cancel()
	addrs, err := c.resolver.LookupHost(rctx, s.u.Hostname())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if s.badDNS == "" {
			c.log.Warn("cannot resolve the targets of a dns+ URL; scraping the addresses known", "url", s.label, "err", err, "known", len(s.targets))
		}
		s.badDNS = err.Error()
		c.m.scrapes.WithLabelValues(s.label, "dns").Inc()
		return fmt.Errorf("%s: %w", s.label, err)
	}
	if s.badDNS != "" {
		c.log.Info("dns+ URL resolves again", "url", s.label, "addresses", len(addrs))
		s.badDNS = ""
	}
	scheme := strings.TrimPrefix(s.u.Scheme, "dns+")
	for _, a := range addrs {
		host := a
		if p := s.u.Port(); p != "" {
			host = net.JoinHostPort(a, p)
		} else if strings.Contains(a, ":") {
			host = "[" + a + "]"
		}
		u := *s.u
		u.Scheme, u.Host = scheme, host
		raw := u.String()
		t := s.targets[raw]
		if t == nil {
			if t, err = c.newTarget(raw, host); err != nil {
				return err
			}
			s.targets[raw] = t
			c.log.Info("new target", "url", s.label, "target", t.label)
		}
		t.seen = now
	}
	s.resolved = now
	for k, t := range s.targets {
		if now.Sub(t.seen) > c.cfg.Traefik.SeriesTTL {
			delete(s.targets, k)
			c.m.forget(t.label)
			c.forgetState(t)
			c.log.Info("target gone", "url", s.label, "target", t.label)
		}
	}
	return nil
}

// scrape fetches, converts and appends one target's page. The page is
// parsed as it arrives, a window at a time, never held whole: its memory is
// the parser's window, not the page's size.
func (c *Collector) scrape(ctx context.Context, t *target, now time.Time, emit func(*target, []byte)) error {
	start := time.Now()
	var (
		out       []byte
		st        ConvertStats
		convErr   error
		converted bool
	)
	// Without a StateStore the records go to the Appender while the page
	// is converted, so that the scrape's line protocol is never held
	// whole (12 MB for 500 services in the traefik schema, twice that in
	// telegraf's), beside the queue's copy. The records are those
	// appendRecords cuts from the whole scrape. An Appender that can keep
	// the records it is given (sink.MemoryQueue) gets the converter's
	// buffer itself, so that a record is not held twice; the converter
	// goes on in a new buffer, and keeps none between scrapes.
	//
	// A GroupStore gets them the same way, in a group that the state ends
	// (append). The group is opened at the first flush if no other
	// target's is open; a page smaller than groupFirst never opens one.
	// While another target's group is open (several URLs or dns+
	// addresses, scraped at once) a scrape holds its lines and asks again
	// every groupRetryEvery bytes, converting on beside the other; once it
	// holds c.groupHold bytes it waits for the group instead, its body
	// unread meanwhile, so that its lines never grow with the page. That
	// wait does not count against traefik.timeout (Stream counts only the
	// waits for Traefik), and it ends when the other scrape ends. Its
	// records are a quarter of a batch: the disk queue joins records into
	// batches when it sends, so they cost only their headers, while the
	// converter holds about one record (a batch is about 1 MB at 100
	// services with the default batch.max_lines).
	var (
		flushed  bool
		flushErr error
		grouped  bool // a group of t.stateKey is open in c.groups
	)
	maxLines, maxBytes := c.cfg.Batch.MaxLines, int(c.cfg.Batch.MaxBytes)
	switch {
	case emit != nil:
		t.conv.setFlush(0, 0, false, nil)
	case c.store == nil:
		a := c.out
		if c.keep != nil {
			a = c.keep
		}
		t.conv.setFlush(1, c.flushEvery, c.keep != nil, func(done []byte) (int, int) {
			k, more, err := appendFullRecords(a, done, maxLines, maxBytes)
			flushed = flushed || k > 0
			flushErr = errors.Join(flushErr, err)
			return k, more
		})
	case c.groups != nil:
		defer func() {
			if grouped { // only if the scrape ended before its state was written
				c.groups.AbortGroup(t.stateKey)
			}
		}()
		gLines, gBytes := max(maxLines/groupRecordsPerBatch, 1), max(maxBytes/groupRecordsPerBatch, 1)
		t.conv.setFlush(min(c.flushEvery, groupFirst), c.flushEvery, false, func(done []byte) (int, int) {
			if !grouped {
				// An error here comes back from AppendWithState at the end.
				// The group is refused while another is open or an append
				// (the self-metrics', say) is being written and synced: ask
				// again soon, so that lines pile up for no longer than that.
				ok, err := c.groups.TryBeginGroup(t.stateKey)
				if !ok && err == nil && len(done) >= c.groupHold {
					err = c.groups.BeginGroupContext(ctx, t.stateKey)
					ok = err == nil
				}
				if !ok || err != nil {
					return 0, groupRetryEvery
				}
				grouped = true
			}
			k, more, err := appendFullRecords(groupAppender{c.groups, t.stateKey}, done, gLines, gBytes)
			// Once a group has failed, every record says so: keep the first.
			if flushErr == nil {
				flushErr = err
			}
			return k, more
		})
	default:
		t.conv.setFlush(0, 0, false, nil)
	}
	// The Scraper applies traefik.timeout, to the reading of the body too.
	err := c.fetch(ctx, t.url, func(body io.Reader, format Format) error {
		t.m.pages[format].Inc()
		var src SampleReader
		if format == FormatProtobuf {
			if t.proto == nil { // a target that answers text never pays for it
				t.proto = NewProtoParser()
			}
			t.proto.ResetReader(body)
			src = t.proto
		} else {
			t.parser.ResetReader(body)
			src = t.parser
		}
		out, st, convErr = t.conv.Convert(src, now, t.out[:0])
		t.out, converted = out, true
		return nil
	})
	t.m.duration.Observe(time.Since(start).Seconds())
	if !converted {
		if ctx.Err() != nil {
			return nil // shutting down: not the target's fault
		}
		return c.failed(t, c.errorKind(err), err)
	}
	t.m.samples.Add(float64(st.Samples))
	for r, n := range st.Skipped {
		if n > 0 {
			t.m.skipped[r].Add(float64(n))
		}
	}
	if st.EmptyLabels > 0 {
		t.m.emptyLabels.Add(float64(st.EmptyLabels))
	}
	t.m.series.Set(float64(t.conv.stateSeries()))
	if n := st.Skipped[SkipSeriesLimit]; n > 0 && !t.overLimit {
		t.overLimit = true
		c.log.Warn("the target has more series than traefik.max_series: samples of the series over it are not written (counted in traefik_influxdb_bridge_samples_skipped_total{reason=\"series_limit\"}); raise traefik.max_series or leave families out with metrics.exclude",
			"target", t.label, "max_series", c.cfg.Traefik.MaxSeries, "samples_skipped", n)
	} else if n == 0 && t.overLimit && convErr == nil {
		t.overLimit = false
		c.log.Info("the target's series fit in traefik.max_series again", "target", t.label, "max_series", c.cfg.Traefik.MaxSeries)
	}
	// Lines converted before a parse error, or before the body broke off
	// (too large, timed out, connection lost), are good and their counters
	// are already accounted for: write them. With a StateStore the state goes
	// too, even without lines: the baseline must not be taken again.
	if len(out) > 0 || flushed || flushErr != nil || c.store != nil {
		ok := c.append(t, out, flushErr, grouped)
		grouped = false // committed, whatever the outcome
		if ok {
			t.m.points.Add(float64(st.Points))
		}
	}
	if len(out) > 0 && emit != nil {
		emit(t, out)
	}
	if convErr != nil {
		var pe *ParseError
		if errors.As(convErr, &pe) {
			return c.failed(t, "parse", convErr)
		}
		if ctx.Err() != nil {
			return nil
		}
		return c.failed(t, c.errorKind(convErr), convErr)
	}
	t.m.success.Inc()
	t.m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	if t.bad != "" {
		c.log.Info("scrape recovered", "target", t.label, "was", t.bad)
		t.bad = ""
	}
	return nil
}

// failed counts a failed scrape and logs it when the failure kind changed.
func (c *Collector) failed(t *target, kind string, err error) error {
	c.m.scrapes.WithLabelValues(t.label, kind).Inc()
	if t.bad != kind {
		c.log.Warn("scrape failed", "target", t.label, "kind", kind, "err", err)
		t.bad = kind
	}
	return fmt.Errorf("%s: %w", t.label, err)
}

// append hands lp to the Appender in records of at most batch.max_lines
// lines and batch.max_bytes bytes, cut at line ends (a single longer line
// goes alone). A StateStore gets the rest of the scrape and the converter's
// state in one call instead, which ends the group opened while converting
// if grouped, or is the whole scrape: cutting it here would make the
// records separate appends, and a crash between them would keep a part of
// the scrape without the state that accounts for it. The store cuts it
// itself.
//
// prior is the error of records appended while converting, if any.
func (c *Collector) append(t *target, lp []byte, prior error, grouped bool) bool {
	err := prior
	if c.store != nil {
		n := bytes.Count(lp, []byte{'\n'})
		if grouped {
			// The state is counted, then written a piece at a time: a
			// large page's is megabytes, which the heap would otherwise
			// hold at the end of every scrape.
			size := t.conv.stateSize()
			write := func(w io.Writer) (err error) {
				t.statePiece, err = t.conv.writeState(w, t.statePiece)
				return err
			}
			// The first scrape, a baseline, is too small for a group
			// and marshalled the state whole: that buffer is not needed
			// any more.
			t.state = nil
			// A group that failed says so here too.
			if err = c.groups.CommitGroupFrom(t.stateKey, lp, n, size, write); err == nil {
				err = prior
			}
		} else {
			t.state = t.conv.appendState(t.state[:0])
			err = c.store.AppendWithState(lp, n, t.stateKey, t.state)
		}
	} else {
		a := c.out
		if t.conv.flushOwned {
			// The records the converter handed over while converting are
			// the queue's; so is the rest of its buffer now.
			a = c.keep
			t.out = nil
		}
		err = errors.Join(err, appendRecords(a, lp, c.cfg.Batch.MaxLines, int(c.cfg.Batch.MaxBytes)))
	}
	if err != nil {
		t.m.appendErrors.Inc()
		if !t.appendBad {
			c.log.Error("the buffer refused a scrape's points", "target", t.label, "err", err)
			t.appendBad = true
		}
		return false
	}
	if t.appendBad {
		c.log.Info("the buffer takes points again", "target", t.label)
		t.appendBad = false
	}
	return true
}

// forgetState replaces the saved state of a target that is gone with an
// empty one, so that churning dns+ targets leave no more than their keys
// behind, and an address that comes back later starts with a baseline, as
// it would without a restart in between.
func (c *Collector) forgetState(t *target) {
	if c.store == nil {
		return
	}
	if err := c.store.AppendWithState(nil, 0, t.stateKey, nil); err != nil {
		c.log.Warn("cannot forget the counter state of a target gone", "target", t.label, "err", err)
	}
}

// defaultFlushEvery is the most line protocol the converter builds up
// between handing records to the Appender. Between those calls it builds up
// about what the next record lacks, so that it holds little more than one
// record: a full record is never cut before it is handed over.
const defaultFlushEvery = 1 << 20

// groupRetryEvery is how many more bytes of line protocol the converter
// builds up before a scrape that could not open its group tries again.
const groupRetryEvery = 64 << 10

// defaultGroupHold is how much line protocol a scrape holds, while another
// target's group is open, before it waits for that group: about what a
// scrape into the memory queue holds at most (defaultFlushEvery), 40 % of
// a 100-service page in the traefik schema.
const defaultGroupHold = 1 << 20

// groupFirst is how much line protocol a scrape builds up before it opens
// a group; a smaller page goes to the StateStore in one append with its
// state. A 20-service page (about 550 KB) is grouped: as a sidecar the
// shipped config peaked at 18.4 MiB against 19.8 with the 1 MiB threshold
// of before (one 2-minute run each).
const groupFirst = 256 << 10

// groupRecordsPerBatch: a grouped scrape's records are this many to a
// batch (batch.max_lines and batch.max_bytes divided by it), so that
// batches stay full.
const groupRecordsPerBatch = 4

func appendRecords(a Appender, lp []byte, maxLines, maxBytes int) error {
	var errs []error
	for len(lp) > 0 {
		end, n, _ := nextRecord(lp, maxLines, maxBytes)
		if err := a.Append(lp[:end], n); err != nil {
			errs = append(errs, err)
		}
		lp = lp[end:]
	}
	return errors.Join(errs...)
}

// appendFullRecords appends the records of lp that more lines could not
// extend, those appendRecords would cut from lp and anything after it
// alike, and returns the bytes they took and about how many more bytes of
// lines, at the average length of lp's, would fill the record that begins
// with the rest of lp.
func appendFullRecords(a Appender, lp []byte, maxLines, maxBytes int) (took, more int, err error) {
	var errs []error
	lines := 0
	for {
		end, n, full := nextRecord(lp[took:], maxLines, maxBytes)
		if !full {
			if total := lines + n; total > 0 {
				more = min((maxLines-n)*(len(lp)/total+1), maxBytes-end)
			}
			return took, more, errors.Join(errs...)
		}
		if err := a.Append(lp[took:took+end], n); err != nil {
			errs = append(errs, err)
		}
		took += end
		lines += n
	}
}

// nextRecord cuts the first record of lp: its bytes and lines, and whether
// it is full (at batch.max_lines, or the line after it, in lp, would take
// it past batch.max_bytes; a single longer line goes alone).
func nextRecord(lp []byte, maxLines, maxBytes int) (end, n int, full bool) {
	for end < len(lp) && n < maxLines {
		i := bytes.IndexByte(lp[end:], '\n')
		next := len(lp)
		if i >= 0 {
			next = end + i + 1
		}
		if n > 0 && next > maxBytes {
			return end, n, true
		}
		end, n = next, n+1
	}
	return end, n, n == maxLines
}
