package pipeline

import (
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

// BenchmarkPageEncode is what answering one scrape costs Traefik after its
// registry has gathered the families, for each way a scraper can ask: its
// promhttp handler encodes the families with expfmt's encoder for the
// negotiated format and, when the scraper accepts gzip, writes through
// compress/gzip at the default level. Gathering costs the same whatever the
// format, so it is left out. "B/page" is what goes on the wire.
//
// The bridge asks for protobuf, and for gzip only from a target that is
// not on loopback (traefik.gzip: auto); Telegraf asks for protobuf and gzip.
func BenchmarkPageEncode(b *testing.B) {
	for _, services := range []int{20, 100, 500} {
		sorted := sortedFamilies(b, traefikpage.Generate(services, 1))
		for _, c := range []struct {
			name string
			typ  expfmt.FormatType
			gzip bool
		}{
			{"text", expfmt.TypeTextPlain, false},
			{"text+gzip", expfmt.TypeTextPlain, true},
			{"protobuf", expfmt.TypeProtoDelim, false},
			{"protobuf+gzip", expfmt.TypeProtoDelim, true},
		} {
			b.Run(fmt.Sprintf("svc%d/%s", services, c.name), func(b *testing.B) {
				var out countWriter
				zw := stdgzip.NewWriter(&out)
				format := expfmt.NewFormat(c.typ)
				b.ReportAllocs()
				for b.Loop() {
					out.n = 0
					var w io.Writer = &out
					if c.gzip {
						zw.Reset(&out)
						w = zw
					}
					enc := expfmt.NewEncoder(w, format)
					for _, mf := range sorted {
						if err := enc.Encode(mf); err != nil {
							b.Fatal(err)
						}
					}
					if c.gzip {
						if err := zw.Close(); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(out.n), "B/page")
			})
		}
	}
}

type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
