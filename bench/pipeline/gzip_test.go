package pipeline

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/traefikpage"
)

// sinkLevel is config.Default's influxdb.gzip_level, which is what
// klauspost/compress takes gzip.DefaultCompression to be. compress/gzip
// takes it as 6, and that is what Telegraf v1.37.2's influxdb output writes
// with (internal.CompressWithGzip: compress/gzip's NewWriter).
const sinkLevel = 5

// gzipLibs are the two gzip packages the bridge could use: the sink and the
// scraper use klauspost/compress; compress/gzip is kept here to show why.
var gzipLibs = []struct {
	name      string
	newWriter func(level int) (gzipWriter, error)
	newReader func() gzipReader
}{
	{
		"stdlib",
		func(level int) (gzipWriter, error) { return stdgzip.NewWriterLevel(io.Discard, level) },
		func() gzipReader { return new(stdgzip.Reader) },
	},
	{
		"klauspost",
		func(level int) (gzipWriter, error) { return gzip.NewWriterLevel(io.Discard, level) },
		func() gzipReader { return new(gzip.Reader) },
	},
}

type gzipWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

type gzipReader interface {
	io.Reader
	Reset(io.Reader) error
}

// BenchmarkGzipLibrary compresses one scrape's line protocol in batches of
// batch.max_lines (5000), as the sink does with one reused writer, with each
// library at levels 6 and 1; "ratio" is raw bytes over compressed bytes.
// Compare the libraries with benchstat after splitting the output by name:
//
//	go test ./pipeline -run '^$' -bench GzipLibrary -count 6 > gz.txt
//	grep -v /klauspost gz.txt | sed 's#/stdlib##' > std.txt
//	grep -v /stdlib gz.txt | sed 's#/klauspost##' > kp.txt
//	benchstat std.txt kp.txt
func BenchmarkGzipLibrary(b *testing.B) {
	for _, in := range inputs(b) {
		if in.name == "fixture" || in.name == "svc20" {
			continue
		}
		for _, schema := range schemas {
			lp := lineProtocol(b, in, schema)
			var batches [][]byte
			for rest := lp; len(rest) > 0; {
				chunk, _ := firstLines(rest, 5000)
				batches = append(batches, chunk)
				rest = rest[len(chunk):]
			}
			for _, level := range []int{sinkLevel, gzip.BestSpeed} {
				for _, lib := range gzipLibs {
					b.Run(fmt.Sprintf("%s/%s/L%d/%s", in.name, schema, level, lib.name), func(b *testing.B) {
						zw, err := lib.newWriter(level)
						if err != nil {
							b.Fatal(err)
						}
						var buf bytes.Buffer
						compressed := 0
						b.SetBytes(int64(len(lp)))
						b.ReportAllocs()
						for b.Loop() {
							compressed = 0
							for _, batch := range batches {
								compressed += compressInto(b, zw, &buf, batch)
							}
						}
						b.ReportMetric(float64(len(lp))/float64(compressed), "ratio")
					})
				}
			}
		}
	}
}

// compressInto gzips data into buf with zw, as the sink does for a batch,
// and returns the compressed size.
func compressInto(b *testing.B, zw gzipWriter, buf *bytes.Buffer, data []byte) int {
	buf.Reset()
	zw.Reset(buf)
	if _, err := zw.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Len()
}

// BenchmarkGzipWriterMemory is what one writer costs to build and use once:
// the sink holds one for its life, so B/op is its memory.
func BenchmarkGzipWriterMemory(b *testing.B) {
	batch, _ := firstLines(lineProtocol(b, input{name: "svc100", bodies: [][]byte{traefikpage.Generate(100, 1), traefikpage.Generate(100, 2)}}, "traefik"), 5000)
	for _, level := range []int{sinkLevel, gzip.BestSpeed} {
		for _, lib := range gzipLibs {
			b.Run(fmt.Sprintf("L%d/%s", level, lib.name), func(b *testing.B) {
				var buf bytes.Buffer
				buf.Grow(len(batch))
				b.ReportAllocs()
				for b.Loop() {
					zw, err := lib.newWriter(level)
					if err != nil {
						b.Fatal(err)
					}
					compressInto(b, zw, &buf, batch)
				}
			})
		}
	}
}

// BenchmarkGunzip reads a Traefik page gzipped as Traefik's handler sends it
// (compress/gzip, default level) with a reused reader, as the scraper does.
func BenchmarkGunzip(b *testing.B) {
	for _, services := range []int{20, 100, 500} {
		page := traefikpage.Generate(services, 1)
		var z bytes.Buffer
		zw := stdgzip.NewWriter(&z)
		if _, err := zw.Write(page); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		for _, lib := range gzipLibs {
			b.Run(fmt.Sprintf("svc%d/%s", services, lib.name), func(b *testing.B) {
				zr := lib.newReader()
				buf := make([]byte, 32<<10)
				b.SetBytes(int64(len(page)))
				b.ReportAllocs()
				for b.Loop() {
					if err := zr.Reset(bytes.NewReader(z.Bytes())); err != nil {
						b.Fatal(err)
					}
					n := 0
					for {
						k, err := zr.Read(buf)
						n += k
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					if n != len(page) {
						b.Fatalf("read %d bytes, want %d", n, len(page))
					}
				}
			})
		}
	}
}

// BenchmarkPageGzip is what a scrape that asks for gzip costs Traefik: its
// promhttp handler (client_golang v1.23.0 in Traefik v3.6.12) compresses
// every page with compress/gzip at the default level, from a pooled writer.
// The bridge does not ask for gzip from a loopback target (traefik.gzip).
func BenchmarkPageGzip(b *testing.B) {
	for _, services := range []int{20, 100, 500} {
		page := traefikpage.Generate(services, 1)
		b.Run(fmt.Sprintf("svc%d", services), func(b *testing.B) {
			zw := stdgzip.NewWriter(io.Discard)
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			for b.Loop() {
				zw.Reset(io.Discard)
				if _, err := zw.Write(page); err != nil {
					b.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
