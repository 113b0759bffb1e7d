package collector

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

// TestConvertIntoInfluxDB writes the converter's output to a real influxd
// and reads it back: escaped tag values come back as they were on the page,
// every field is a float, and the hand-checked values of the golden test are
// what InfluxDB answers. The escaping rules of InfluxDB 1.x and of
// line-protocol/v2 differ around backslashes; this is the one that counts.
func TestConvertIntoInfluxDB(t *testing.T) {
	srv := influxtest.Start(t, influxtest.WithoutTLS(), influxtest.WithoutAuth())
	ctx := t.Context()
	write := func(t *testing.T, db string, lp []byte) {
		t.Helper()
		require.NoError(t, srv.CreateDatabase(ctx, db))
		resp, err := http.Post(srv.URL+"/write?"+url.Values{"db": {db}, "precision": {"s"}}.Encode(), "text/plain", bytes.NewReader(lp))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusNoContent, resp.StatusCode, "influxd: %s", body)
	}
	tagValues := func(t *testing.T, db, meas, key string) []string {
		t.Helper()
		series, err := srv.Query(ctx, db, `SHOW TAG VALUES FROM "`+meas+`" WITH KEY = "`+key+`"`)
		require.NoError(t, err)
		var vals []string
		for _, s := range series {
			for _, row := range s.Values {
				vals = append(vals, row[1].(string))
			}
		}
		return vals
	}

	t.Run("escaping", func(t *testing.T) {
		values := []string{
			"plain", "with space", "with,comma", "with=equals", `with"quote`, `with\backslash`,
			`\,`, `a\ b`, `a\=b`, `\\a`, "ünïcödé 日本", " leading", "trailing ", "=", ",", " ",
		}
		var page strings.Builder
		page.WriteString("# TYPE m gauge\n")
		for i, v := range values {
			esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)
			page.WriteString(`m{i="` + string(rune('a'+i)) + `",v="` + esc + `"} 1` + "\n")
		}
		c := newTestConverter(t, "prometheus", func(o *ConvertOptions) { o.Tags = map[string]string{"z z": "x,y=z"} })
		out, _ := convertPage(t, c, page.String(), t0)
		write(t, "esc", out)
		require.ElementsMatch(t, values, tagValues(t, "esc", "m", "v"))
		require.Equal(t, []string{"x,y=z"}, tagValues(t, "esc", "m", "z z"))
	})

	pages := readScrapes(t)
	for _, schema := range []string{"traefik", "prometheus", "telegraf"} {
		t.Run(schema, func(t *testing.T) {
			c := newTestConverter(t, schema, func(o *ConvertOptions) {
				o.Include = []string{"traefik_*"}
				o.URL = "http://127.0.0.1:29100/metrics"
			})
			var all []byte
			for i, page := range pages {
				out, _ := convertPage(t, c, page, t0.Add(time.Duration(i)*10*time.Second))
				all = append(all, out...)
			}
			write(t, schema, all)
			// Every field of every measurement is a float.
			ms, err := srv.Query(ctx, schema, "SHOW MEASUREMENTS")
			require.NoError(t, err)
			require.NotEmpty(t, ms)
			for _, row := range ms[0].Values {
				types, err := srv.FieldTypes(ctx, schema, row[0].(string))
				require.NoError(t, err)
				for f, typ := range types {
					require.Equal(t, "float", typ, "%s.%s", row[0], f)
				}
			}
			q := map[string]string{
				"traefik":    `SELECT "count" FROM "traefik.service.requests.total" WHERE "code" = '404' AND "method" = 'GET' AND "service" = 'api-svc@file'`,
				"prometheus": `SELECT "value" FROM "traefik_service_requests_total" WHERE "code" = '404' AND "method" = 'GET' AND "service" = 'api-svc@file'`,
				"telegraf":   `SELECT "counter" FROM "traefik_service_requests_total" WHERE "code" = '404' AND "method" = 'GET' AND "service" = 'api-svc@file'`,
			}[schema]
			want := map[string][]string{
				"traefik":    {"20", "5"},       // increases 36->56, then the reset to 5
				"prometheus": {"36", "56", "5"}, // cumulative
				"telegraf":   {"36", "56", "5"},
			}[schema]
			series, err := srv.Query(ctx, schema, q)
			require.NoError(t, err)
			require.Len(t, series, 1)
			var got []string
			for _, row := range series[0].Values {
				got = append(got, string(row[1].(json.Number)))
			}
			require.Equal(t, want, got)
		})
	}
}
