package main

import (
	"log/slog"
	"runtime/debug"
)

// releaseStartupMemory gives back what only starting needed, once, just
// before the first scrape. Package initialisation, viper and the config
// decoding touch most of the executable (of the shipped 11.6 MB binary, 9.5
// MiB were resident for the life of a sidecar), while the scrape loop uses
// about 7 MiB of it; unmapping the code and read-only data lets the loop fault
// back only what it uses. The heap left over from loading the configuration
// goes back to the kernel too, instead of waiting for the scavenger.
//
// A 20-service sidecar at 10s: peak RSS 18.7-19.0 -> 15.4-15.6 MiB, CPU
// unchanged (BENCHMARKS.md, "Sidecar memory").
func releaseStartupMemory(log *slog.Logger) {
	debug.FreeOSMemory()
	n, err := dropExecutablePages()
	if err != nil {
		log.Debug("executable pages kept mapped", "err", err)
		return
	}
	log.Debug("executable pages unmapped after start", "bytes", n)
}
