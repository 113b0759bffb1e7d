package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// The Accept headers the two tools send: Telegraf v1.37.2's
// plugins/inputs/prometheus (acceptHeader), and the bridge's collector with
// traefik.format auto (the same) and text.
const (
	telegrafAccept   = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3`
	bridgeAccept     = telegrafAccept
	bridgeTextAccept = `text/plain;version=0.0.4`
)

func TestPageServerNegotiatesLikePromhttp(t *testing.T) {
	tests := []struct {
		name       string
		negotiate  bool
		accept     string
		wantFormat string
	}{
		{"telegraf gets protobuf", true, telegrafAccept, formatProtobuf},
		{"bridge gets protobuf", true, bridgeAccept, formatProtobuf},
		{"bridge with traefik.format text gets text", true, bridgeTextAccept, formatText},
		{"no Accept gets text", true, "", formatText},
		{"text for everyone when not negotiating", false, telegrafAccept, formatText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			book := newPageBook(3, true)
			require.NoError(t, book.prepareProtobuf(0))
			ps := &pageServer{negotiate: tt.negotiate}
			ps.reset(book, nil)
			srv := httptest.NewServer(ps)
			defer srv.Close()

			req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
			require.NoError(t, err)
			req.Header.Set("Accept", tt.accept)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			zr, err := gzip.NewReader(resp.Body)
			require.NoError(t, err)
			body, err := io.ReadAll(zr)
			require.NoError(t, err)

			// The handler records the scrape after writing the body, which the
			// client can finish reading first.
			require.Eventually(t, func() bool { return len(ps.served()) == 1 }, 5*time.Second, time.Millisecond)
			served := ps.served()
			require.Equal(t, tt.wantFormat, served[0].Format)
			got := expfmt.ResponseFormat(resp.Header)
			if tt.wantFormat == formatProtobuf {
				require.Equal(t, expfmt.TypeProtoDelim, got.FormatType(), resp.Header.Get("Content-Type"))
				require.Equal(t, book.get(0).pb, body)
			} else {
				require.Equal(t, expfmt.TypeTextPlain, got.FormatType(), resp.Header.Get("Content-Type"))
				require.Equal(t, book.get(0).raw, body)
			}
		})
	}
}

// A protobuf page must carry exactly the text page's metrics: Telegraf and
// the bridge are compared on the same work only if it does.
func TestProtobufPageHoldsTheTextPagesMetrics(t *testing.T) {
	book := newPageBook(7, false)
	require.NoError(t, book.prepareProtobuf(2))
	for k := 0; k <= 2; k++ {
		p := book.get(k)
		textSamples, _ := countSamples(p.raw)
		n, err := protobufSamples(p.pb)
		require.NoError(t, err)
		require.Equal(t, textSamples, n, "page %d: samples", k)

		parser := expfmt.NewTextParser(model.LegacyValidation)
		want, err := parser.TextToMetricFamilies(bytes.NewReader(p.raw))
		require.NoError(t, err)
		dec := expfmt.NewDecoder(bytes.NewReader(p.pb), expfmt.NewFormat(expfmt.TypeProtoDelim))
		var names []string
		for {
			var mf dto.MetricFamily
			err := dec.Decode(&mf)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			names = append(names, mf.GetName())
			require.Contains(t, want, mf.GetName())
			require.True(t, proto.Equal(want[mf.GetName()], &mf), "page %d: family %s differs", k, mf.GetName())
		}
		require.Len(t, names, len(want), "page %d: every family, once", k)
		require.IsIncreasing(t, names, "families in name order, as a registry gathers them")
	}
}

// protobufSamples counts the samples of a delimited protobuf page as
// countSamples counts those of a text page: a histogram's buckets, _sum and
// _count, a summary's quantiles, _sum and _count, one for anything else.
func protobufSamples(pb []byte) (int, error) {
	dec := expfmt.NewDecoder(bytes.NewReader(pb), expfmt.NewFormat(expfmt.TypeProtoDelim))
	n := 0
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Histogram != nil:
				n += len(m.Histogram.GetBucket()) + 2
				if !hasInfBucket(m.Histogram) {
					n++ // the text format always writes the +Inf bucket
				}
			case m.Summary != nil:
				n += len(m.Summary.GetQuantile()) + 2
			default:
				n++
			}
		}
	}
}

func hasInfBucket(h *dto.Histogram) bool {
	bs := h.GetBucket()
	return len(bs) > 0 && bs[len(bs)-1].GetUpperBound() > 1e308
}
