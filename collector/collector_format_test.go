package collector

import (
	"bytes"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// promhttpServer serves the given text pages in turn (then the last one
// again) through client_golang's promhttp handler, as Traefik serves its
// own: the handler negotiates the format from the scrape's Accept header.
func promhttpServer(t *testing.T, pages []string) *httptest.Server {
	t.Helper()
	gathered := make([][]*dto.MetricFamily, len(pages))
	for i, p := range pages {
		tp := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := tp.TextToMetricFamilies(bytes.NewReader([]byte(p)))
		require.NoError(t, err)
		for _, n := range slices.Sorted(maps.Keys(fams)) {
			gathered[i] = append(gathered[i], fams[n])
		}
	}
	var (
		mu sync.Mutex
		i  int
	)
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mu.Lock()
		defer mu.Unlock()
		mfs := gathered[min(i, len(gathered)-1)]
		i++
		return mfs, nil
	})
	srv := httptest.NewServer(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv
}

// TestCollectorFormats: scraping a promhttp handler, as Traefik's, the
// bridge asks for protobuf by default and writes byte for byte the line
// protocol it writes with traefik.format text, in every schema and across
// scrapes (the traefik schema's deltas and a restart included).
func TestCollectorFormats(t *testing.T) {
	pages := readScrapes(t)
	for _, schema := range []string{config.SchemaTraefik, config.SchemaPrometheus, config.SchemaTelegraf} {
		t.Run(schema, func(t *testing.T) {
			out := map[string][]string{}
			for _, format := range []string{config.FormatAuto, config.FormatText} {
				srv := promhttpServer(t, pages)
				cfg := testConfig(srv.URL + "/metrics")
				cfg.Schema = schema
				cfg.Traefik.Format = format
				rec := &appendRecorder{}
				c, logs := newTestCollector(t, cfg, rec)
				for i := range pages {
					tick(c, t0.Add(time.Duration(i)*10*time.Second))
					all, _, _ := rec.take()
					require.NotEmpty(t, all, "scrape %d: %s", i+1, logs)
					// The telegraf schema tags the scraped URL; each run has its server.
					out[format] = append(out[format], strings.ReplaceAll(all, srv.URL, "http://traefik"))
				}
				tg := c.sources[0].targets[srv.URL+"/metrics"]
				require.Equal(t, float64(len(pages)), tg.m.success.Value(), logs.String())
				text, proto := tg.m.pages[FormatText].Value(), tg.m.pages[FormatProtobuf].Value()
				if format == config.FormatText {
					require.Nil(t, tg.proto, "a target that answers text never makes a ProtoParser")
					require.Equal(t, []float64{float64(len(pages)), 0}, []float64{text, proto})
				} else {
					require.NotNil(t, tg.proto, "promhttp answered protobuf")
					require.Equal(t, []float64{0, float64(len(pages))}, []float64{text, proto})
				}
			}
			require.Equal(t, out[config.FormatText], out[config.FormatAuto])
		})
	}
}
