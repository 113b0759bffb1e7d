//go:build unix

package diskqueue

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock so that two bridges cannot share
// one queue directory; the lock dies with the process.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errors.New("the directory is in use by another process")
	}
	return err
}
