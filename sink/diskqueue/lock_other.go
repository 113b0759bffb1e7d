//go:build !unix

package diskqueue

import "os"

// lockFile is a no-op where flock does not exist.
func lockFile(*os.File) error { return nil }
