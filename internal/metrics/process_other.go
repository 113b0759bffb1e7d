//go:build !linux

package metrics

// Elsewhere than Linux the process_* families are not exported.
func processNames() []string      { return nil }
func collectProcess(func(Family)) {}
