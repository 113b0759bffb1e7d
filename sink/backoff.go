package sink

import (
	"context"
	"time"
)

// backoff is exponential backoff with full jitter: the n-th wait is uniform
// in [min, min(max, min·2ⁿ)], so many bridges that lost the same server do
// not come back in step.
type backoff struct {
	min, max time.Duration
	attempt  int
	// randN returns a uniform integer in [0, n); math/rand/v2.Int64N.
	randN func(n int64) int64
}

// next returns the wait before the next attempt. A Retry-After from the
// server wins over the computed wait, as in Prometheus remote write.
func (b *backoff) next(retryAfter time.Duration) time.Duration {
	ceiling := b.min
	for i := 0; i < b.attempt && ceiling < b.max; i++ {
		ceiling *= 2
	}
	if ceiling > b.max || ceiling <= 0 {
		ceiling = b.max
	}
	b.attempt++
	if retryAfter > 0 {
		return retryAfter
	}
	return b.min + time.Duration(b.randN(int64(ceiling-b.min)+1))
}

func (b *backoff) reset() { b.attempt = 0 }

// wait blocks for d or until ctx is done.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
