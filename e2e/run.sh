#!/usr/bin/env bash
# The end-to-end suite on its own: builds the pinned Traefik once (cached in
# e2e/.cache; a few minutes the first time), then runs the suite against a
# real Traefik, a real influxd (Debian package influxdb) and the bridge binary.
# Arguments go to go test, e.g.:
#   bash e2e/run.sh -run TestSidecar -v
# With TIB_REQUIRE_REAL=1 a missing influxd or Traefik fails the suite
# instead of skipping it (CI sets it).
set -euo pipefail
cd "$(dirname "$0")"
go run ./cmd/buildtraefik >/dev/null
exec go test -timeout 30m "$@" ./...
