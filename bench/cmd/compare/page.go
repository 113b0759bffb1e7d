package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

// Page formats, as the page server answers them.
const (
	formatText     = "text"
	formatProtobuf = "protobuf"
)

// page is one Traefik scrape, generated once and served to every tool, so
// the tools compared in a run get the same metrics: byte-identical text, or
// the same families in delimited protobuf for a tool that asks for it.
type page struct {
	raw     []byte
	gz      []byte // raw gzipped as promhttp answers Accept-Encoding: gzip (see gzipPage)
	pb      []byte // the same families in delimited protobuf; nil until a run needs it
	pbGz    []byte
	samples int // sample lines (every family)
	traefik int // sample lines of traefik_* families
}

// pageBook holds the pages of one size, by scrape number. Page k has the
// counters of Traefik after k intervals; a tool's k-th scrape gets page k.
type pageBook struct {
	services int
	gzip     bool

	mu    sync.Mutex
	pages []*page
}

func newPageBook(services int, gzipPages bool) *pageBook {
	return &pageBook{services: services, gzip: gzipPages}
}

// prepareProtobuf encodes pages 0..k in protobuf, once, before a tool that
// may ask for it starts: encoding a 500-service page takes seconds, which
// must neither delay a scrape nor compete with the tool for CPU.
func (b *pageBook) prepareProtobuf(k int) error {
	b.get(k)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.pages[:k+1] {
		if p.pb != nil {
			continue
		}
		pb, err := textToProtobuf(p.raw)
		if err != nil {
			return err
		}
		p.pb = pb
		if b.gzip {
			p.pbGz = gzipPage(pb)
		}
	}
	return nil
}

// textToProtobuf re-encodes a text exposition as delimited protobuf, the
// answer promhttp gives to a scraper that prefers it (Telegraf does), with
// the families in name order as a registry gathers them.
func textToProtobuf(text []byte) ([]byte, error) {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("page to protobuf: %w", err)
	}
	names := make([]string, 0, len(families))
	for name := range families {
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	buf.Grow(len(text) / 2)
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, name := range names {
		if err := enc.Encode(families[name]); err != nil {
			return nil, fmt.Errorf("page to protobuf: %s: %w", name, err)
		}
	}
	return buf.Bytes(), nil
}

// gzipPage compresses a page as Traefik's promhttp handler does: with
// compress/gzip's NewWriter, the default level (client_golang v1.23.0,
// promhttp/http.go, the writer pool). The level matters to the scrapers
// measured: a 100-service text page compressed at BestSpeed takes a third
// longer to gunzip than at the default.
func gzipPage(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b) / 8)
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// get returns page k, generating it (and every earlier one) if needed.
func (b *pageBook) get(k int) *page {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pages) <= k {
		b.pages = append(b.pages, b.make(len(b.pages)))
	}
	return b.pages[k]
}

func (b *pageBook) make(round int) *page {
	raw := traefikpage.Generate(b.services, round)
	p := &page{raw: raw}
	p.samples, p.traefik = countSamples(raw)
	if b.gzip {
		p.gz = gzipPage(raw)
	}
	return p
}

// countSamples counts the sample lines of a text exposition.
func countSamples(b []byte) (all, traefik int) {
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		all++
		if bytes.HasPrefix(line, []byte("traefik_")) {
			traefik++
		}
	}
	return all, traefik
}

// scrape is one page served to the tool under test.
type scrape struct {
	Arrived time.Time
	Round   int
	Gzipped bool
	Format  string // formatText or formatProtobuf
	// CPU is the tool's CPU time when the request arrived, zero if unknown.
	CPU time.Duration
}

// pageServer serves the pages of a book in order: the n-th request of a run
// gets page n, as a Traefik whose counters grow between scrapes.
type pageServer struct {
	// negotiate answers each scraper in the format its Accept header prefers,
	// as Traefik's promhttp handler does; false serves text to everyone.
	negotiate bool

	book *pageBook
	// cpu, when set, reads the tool's CPU time; it is sampled on every scrape.
	cpu func() time.Duration

	mu      sync.Mutex
	next    int
	scrapes []scrape
}

func (s *pageServer) reset(book *pageBook, cpu func() time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.book, s.cpu, s.next, s.scrapes = book, cpu, 0, nil
}

// setCPU sets the reader of the tool's CPU time, once the tool has a pid.
func (s *pageServer) setCPU(cpu func() time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cpu = cpu
}

func (s *pageServer) served() []scrape {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]scrape(nil), s.scrapes...)
}

func (s *pageServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/metrics" {
		http.NotFound(w, req)
		return
	}
	now := time.Now()
	s.mu.Lock()
	book, cpu, round := s.book, s.cpu, s.next
	s.next++
	s.mu.Unlock()
	var used time.Duration
	if cpu != nil {
		used = cpu()
	}
	p := book.get(round)

	format, contentType := formatText, expfmt.Format("text/plain; version=0.0.4; charset=utf-8")
	if s.negotiate {
		if f := expfmt.NegotiateAccept(req.Header, expfmt.DefaultAcceptedFormats()...); f.FormatType() == expfmt.TypeProtoDelim {
			format, contentType = formatProtobuf, f
		}
	}
	body, gzBody := p.raw, p.gz
	if format == formatProtobuf {
		body, gzBody = p.pb, p.pbGz
		if body == nil {
			// runTool prepares protobuf pages for the tools that ask for it.
			http.Error(w, "protobuf page not prepared", http.StatusInternalServerError)
			return
		}
	}
	gz := gzBody != nil && acceptsGzip(req.Header.Get("Accept-Encoding"))
	if gz {
		body = gzBody
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("Content-Type", string(contentType))
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)

	s.mu.Lock()
	s.scrapes = append(s.scrapes, scrape{Arrived: now, Round: round, Gzipped: gz, Format: format, CPU: used})
	s.mu.Unlock()
}

func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}
