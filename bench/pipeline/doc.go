// Package pipeline holds Go benchmarks of the bridge's work on one scrape,
// step by step (parse, convert to line protocol, compress) and end to end,
// on the real Traefik fixtures and on generated pages of 20 to 500 services.
// It has no code of its own: the steps are the collector's and the sink's.
package pipeline
