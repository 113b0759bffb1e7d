package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxWriteBody bounds one decompressed write, like InfluxDB's max-body-size
// bounds the compressed one; a tool that sends more is broken, not fast.
const maxWriteBody = 256 << 20

// receiver plays the part of InfluxDB 1.x on loopback: it answers /ping,
// /query (CREATE DATABASE) and /write, and counts what /write delivered. It
// counts rather than stores, so its own memory stays flat whatever the page.
type receiver struct {
	mu sync.Mutex
	c  writeCounts
}

// writeCounts is what the tool under test sent.
type writeCounts struct {
	Requests  int64     // /write requests answered 204
	WireBytes int64     // request bodies as sent (compressed when gzip)
	RawBytes  int64     // request bodies after gunzip
	Gzipped   int64     // requests with Content-Encoding: gzip
	Lines     int64     // line-protocol lines
	Fields    int64     // field key=value pairs over all lines
	Rejected  int64     // requests answered 400 (unreadable body)
	Last      time.Time // when the last write arrived
}

func (r *receiver) counts() writeCounts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c
}

func (r *receiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.c = writeCounts{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/ping":
		drain(req.Body)
		w.Header().Set("X-Influxdb-Version", "1.8.10")
		w.WriteHeader(http.StatusNoContent)
	case "/query":
		drain(req.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"results":[{"statement_id":0}]}`)
	case "/write":
		r.write(w, req)
	default:
		drain(req.Body)
		http.NotFound(w, req)
	}
}

// basicAuth answers 401, as InfluxDB with auth-enabled does, to a request
// without the expected credentials, so a tool that sends none is seen at once.
// /ping needs none, as on InfluxDB.
func basicAuth(next http.Handler, user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); req.URL.Path != "/ping" && (!ok || u != user || p != password) {
			drain(req.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"authorization failed"}`)
			return
		}
		next.ServeHTTP(w, req)
	})
}

func (r *receiver) write(w http.ResponseWriter, req *http.Request) {
	wire := &countingReader{r: req.Body}
	var body io.Reader = wire
	gz := strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip")
	if gz {
		zr, err := gzip.NewReader(wire)
		if err != nil {
			r.reject(w, req)
			return
		}
		defer zr.Close()
		body = zr
	}
	raw, err := io.ReadAll(io.LimitReader(body, maxWriteBody+1))
	if err != nil || len(raw) > maxWriteBody {
		r.reject(w, req)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(wire, maxWriteBody))
	_ = req.Body.Close()
	lines, fields := countLineProtocol(raw)

	r.mu.Lock()
	r.c.Requests++
	r.c.WireBytes += wire.n
	r.c.RawBytes += int64(len(raw))
	if gz {
		r.c.Gzipped++
	}
	r.c.Lines += lines
	r.c.Fields += fields
	r.c.Last = time.Now()
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) reject(w http.ResponseWriter, req *http.Request) {
	drain(req.Body)
	r.mu.Lock()
	r.c.Rejected++
	r.mu.Unlock()
	http.Error(w, `{"error":"unable to parse body"}`, http.StatusBadRequest)
}

// countLineProtocol counts the lines and the fields of a line-protocol body.
// It knows just enough of the syntax to find the field set: the section after
// the first unescaped space outside the measurement and tags, up to the next
// unquoted space, with commas outside string values separating fields.
func countLineProtocol(b []byte) (lines, fields int64) {
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		lines++
		fields += countFields(line)
	}
	return lines, fields
}

func countFields(line []byte) int64 {
	// Skip measurement and tag set: up to the first space not escaped.
	i := 0
	for ; i < len(line); i++ {
		if line[i] == '\\' {
			i++
			continue
		}
		if line[i] == ' ' {
			break
		}
	}
	if i >= len(line) {
		return 0
	}
	n := int64(1)
	inString := false
	for i++; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == ',':
			n++
		case c == ' ':
			return n
		}
	}
	return n
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func drain(r io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, maxWriteBody))
	_ = r.Close()
}
