package main

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCountLineProtocol(t *testing.T) {
	tests := []struct {
		name          string
		body          string
		lines, fields int64
	}{
		{"empty", "", 0, 0},
		{"one field", "m,a=b count=1 1700000000\n", 1, 1},
		{"no timestamp, no newline", "m value=2", 1, 1},
		{"telegraf histogram", "h,service=x 0.1=1,0.3=2,1.2=3,5=4,+Inf=5,count=5,sum=0.9 1\n", 1, 7},
		{"escaped space and comma in tags", `m,k=a\ b\,c f=1,g=2 1` + "\n", 1, 2},
		{"string field with comma and space", `m s="a, b c",n=1 1` + "\n", 1, 2},
		{"blank and comment lines", "\n# c\nm a=1\n\n", 1, 1},
		{"several", "m a=1\nm b=1,c=2\nm d=1i\n", 3, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, fields := countLineProtocol([]byte(tt.body))
			require.Equal(t, tt.lines, lines)
			require.Equal(t, tt.fields, fields)
		})
	}
}

func TestReceiverWrite(t *testing.T) {
	body := "m,a=b count=1 1\nm,a=c count=2,x=3 1\n"
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(body))
	require.NoError(t, zw.Close())

	tests := []struct {
		name     string
		payload  []byte
		encoding string
		status   int
		want     writeCounts
	}{
		{"plain", []byte(body), "", http.StatusNoContent,
			writeCounts{Requests: 1, WireBytes: int64(len(body)), RawBytes: int64(len(body)), Lines: 2, Fields: 3}},
		{"gzip", zipped.Bytes(), "gzip", http.StatusNoContent,
			writeCounts{Requests: 1, WireBytes: int64(zipped.Len()), RawBytes: int64(len(body)), Gzipped: 1, Lines: 2, Fields: 3}},
		{"gzip header on plain body", []byte(body), "gzip", http.StatusBadRequest,
			writeCounts{Rejected: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv := &receiver{}
			srv := httptest.NewServer(recv)
			defer srv.Close()
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/write?db=bench&precision=s", bytes.NewReader(tt.payload))
			require.NoError(t, err)
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tt.status, resp.StatusCode)
			got := recv.counts()
			got.Last = tt.want.Last
			require.Equal(t, tt.want, got)
		})
	}
}

func TestReceiverPingAndQuery(t *testing.T) {
	srv := httptest.NewServer(&receiver{})
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/ping")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("X-Influxdb-Version"))

	resp, err = srv.Client().Post(srv.URL+"/query", "application/x-www-form-urlencoded", strings.NewReader("q=CREATE+DATABASE+bench"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"identity", false},
		{"zstd, gzip;q=0.5", true},
		{"gzip;q=0", false},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			require.Equal(t, tt.want, acceptsGzip(tt.header))
		})
	}
}
