// Package harness runs the pieces of the end-to-end topology as real processes
// on loopback: a Traefik built from source at a pinned version, a plain HTTP
// backend, the bridge binary, and a traffic driver that sends a known mix of
// requests. It also reads Prometheus text so a test can hold Traefik's own
// counters next to what InfluxDB received.
//
// Each piece has a Launch function, for programs such as the demo, and a Start
// function for tests. Start registers the cleanup, and skips the test (or fails
// it when TIB_REQUIRE_REAL=1) when a real server cannot be had.
package harness
