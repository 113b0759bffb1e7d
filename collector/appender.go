package collector

// Appender takes what one scrape produced: n complete, newline-terminated
// line-protocol lines. It copies what it keeps. sink.Queue satisfies it, so the
// collector and the sink share nothing but bytes.
type Appender interface {
	Append(lines []byte, n int) error
}

// StateStore is an Appender that also keeps each target's converter state
// with its data, so that the traefik schema's counters survive a restart of
// the bridge (*diskqueue.Queue is one). AppendWithState must keep a scrape's
// lines and its state together or lose both: the state is what the next
// deltas are computed from, so a state without its lines would lose those
// increases and lines without their state would count them twice. With
// lines nil it saves the state alone. LoadState returns the newest state
// saved for key, or nil.
type StateStore interface {
	AppendWithState(lines []byte, n int, key string, state []byte) error
	LoadState(key string) ([]byte, error)
}
