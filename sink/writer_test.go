package sink

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAnswers is the table of InfluxDB 1.x answers and what the sink does
// with each (docs reference, section 4). The messages are influxd 1.6's.
func TestAnswers(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	const lines = 10
	tests := []struct {
		name       string
		code       int
		header     http.Header
		msg        string
		want       string // action
		dropped    int
		retryAfter time.Duration
	}{
		{name: "204 written", code: 204, want: "next"},
		{name: "200 empty body", code: 200, want: "next"},
		{name: "partial write, type conflict", code: 400,
			msg:  `partial write: field type conflict: input field "count" on measurement "m" is type float, already exists as type integer dropped=3`,
			want: "count dropped", dropped: 3},
		{name: "partial write, two lines unparsed", code: 400,
			msg:  "partial write: unable to parse 'm v=': missing field value\nunable to parse 'x': missing fields dropped=0",
			want: "count dropped", dropped: 2},
		{name: "partial write capped at the batch", code: 400, msg: "partial write: max-values-per-tag limit exceeded dropped=99", want: "count dropped", dropped: lines},
		{name: "400 unable to parse", code: 400, msg: `unable to parse 'm v=': missing field value`, want: "drop batch"},
		{name: "401", code: 401, msg: "authorization failed", want: "retry"},
		{name: "403", code: 403, msg: `"reader" user is not authorized to write to database "tib"`, want: "retry"},
		{name: "404 database not found", code: 404, msg: `database not found: "tib"`, want: "create database, retry"},
		{name: "404 elsewhere", code: 404, msg: "404 page not found", want: "retry"},
		{name: "413", code: 413, msg: "Request Entity Too Large", want: "split"},
		{name: "429 with Retry-After seconds", code: 429, header: http.Header{"Retry-After": {"30"}}, want: "retry", retryAfter: 30 * time.Second},
		{name: "500 timeout", code: 500, msg: "timeout", want: "retry"},
		{name: "500 retention policy", code: 500, msg: "retention policy not found: x", want: "retry"},
		{name: "503 with Retry-After date", code: 503, header: http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, want: "retry", retryAfter: 90 * time.Second},
		{name: "503 with bad Retry-After", code: 503, header: http.Header{"Retry-After": {"soon"}}, want: "retry"},
		{name: "502 from a proxy", code: 502, msg: "<html>bad gateway</html>", want: "retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			err := classify(tt.code, h, tt.msg, lines, now)
			var (
				partial  *PartialWriteError
				rejected *RejectedError
				tooLarge *TooLargeError
				retry    *RecoverableError
				status   *StatusError
			)
			var got string
			switch {
			case err == nil:
				got = "next"
			case errors.As(err, &partial):
				got = "count dropped"
				require.Equal(t, tt.dropped, partial.Dropped)
			case errors.As(err, &rejected):
				got = "drop batch"
				require.Equal(t, lines, rejected.Lines)
			case errors.As(err, &tooLarge):
				got = "split"
			case errors.As(err, &retry):
				got = "retry"
				require.Equal(t, tt.retryAfter, retry.RetryAfter())
				require.ErrorAs(t, err, &status)
				require.Equal(t, tt.code, status.Code)
				if status.DatabaseNotFound() {
					got = "create database, retry"
				}
			}
			require.Equal(t, tt.want, got, "error: %v", err)
		})
	}
}

func TestSplitLines(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		lines     int
		wantLeft  string
		wantLines int
	}{
		{name: "even", data: "a\nb\nc\nd\n", lines: 4, wantLeft: "a\nb\n", wantLines: 2},
		{name: "odd", data: "a\nb\nc\n", lines: 3, wantLeft: "a\n", wantLines: 1},
		{name: "two", data: "a\nb\n", lines: 2, wantLeft: "a\n", wantLines: 1},
		{name: "count larger than the data", data: "a\nb\n", lines: 8, wantLeft: "a\n", wantLines: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			left, n := splitLines([]byte(tt.data), tt.lines)
			require.Equal(t, tt.wantLeft, string(left))
			require.Equal(t, tt.wantLines, n)
		})
	}
}
