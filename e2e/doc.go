// Package e2e holds the end-to-end suite: a real Traefik at a pinned version,
// a real InfluxDB 1.x over HTTPS with authentication, and the bridge binary as
// its own process, run from the configuration files in examples/. The suite
// compares what InfluxDB holds with Traefik's own counters, series by series.
// Run it with `bash e2e/run.sh` or `cd e2e && go test ./...`.
package e2e
