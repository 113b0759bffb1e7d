package diskqueue

import "context"

// waitLock is a mutex whose waiters can give up when their context ends, so
// that a scrape waiting to open its group is not kept past a shutdown.
// Waiters are let in in the order they came, as a channel's senders are.
type waitLock chan struct{}

func newWaitLock() waitLock { return make(waitLock, 1) }

func (l waitLock) Lock() { l <- struct{}{} }

func (l waitLock) TryLock() bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}

// LockContext waits for the lock until ctx ends, and then returns its error.
func (l waitLock) LockContext(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l waitLock) Unlock() {
	select {
	case <-l:
	default:
		panic("diskqueue: unlock of an unlocked waitLock")
	}
}
