package collector

// Appender takes what one scrape produced: n complete, newline-terminated
// line-protocol lines. It copies what it keeps. sink.Queue satisfies it, so the
// collector and the sink share nothing but bytes.
type Appender interface {
	Append(lines []byte, n int) error
}
