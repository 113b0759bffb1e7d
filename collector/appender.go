package collector

import (
	"context"
	"io"
)

// Appender takes what one scrape produced: n complete, newline-terminated
// line-protocol lines. It copies what it keeps (but see ownedAppender).
// sink.Queue satisfies it, so the collector and the sink share nothing but
// bytes.
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

// GroupStore is a StateStore that also takes a scrape's records as they
// are converted, so that the collector need not hold the scrape whole
// (*diskqueue.Queue is one). TryBeginGroup opens a group for key, or says
// at once that another is open; the records handed to AppendGroup become
// the store's, with the state, only at CommitGroupFrom, and none of them if
// it fails, if AbortGroup takes the group back, or if the process dies
// before: the same promise as AppendWithState, a record at a time.
// CommitGroupFrom takes the state as its length and a function that writes
// it, so that it is never held whole. CommitGroupFrom and AbortGroup end the
// group; AbortGroup does nothing for a key with no group open. The methods
// take the key, not a handle, so that the store's own types stay out of
// this package.
type GroupStore interface {
	StateStore
	TryBeginGroup(key string) (ok bool, err error)
	// BeginGroupContext waits until no other group is open, or until ctx
	// ends and returns its error.
	BeginGroupContext(ctx context.Context, key string) error
	AppendGroup(key string, lines []byte, n int) error
	CommitGroupFrom(key string, lines []byte, n int, stateLen int, writeState func(w io.Writer) error) error
	AbortGroup(key string)
}

// ownedAppender is an Appender that can keep the lines it is given rather
// than a copy (sink.MemoryQueue, see sink.OwningAppender): the caller gives
// them up and never writes to their backing array again.
type ownedAppender interface {
	AppendOwned(lines []byte, n int) error
}

// owningAppender hands every record over with AppendOwned.
type owningAppender struct{ a ownedAppender }

func (o owningAppender) Append(lines []byte, n int) error { return o.a.AppendOwned(lines, n) }

// groupAppender appends to the open group of key.
type groupAppender struct {
	s   GroupStore
	key string
}

func (g groupAppender) Append(lines []byte, n int) error { return g.s.AppendGroup(g.key, lines, n) }
