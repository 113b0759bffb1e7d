#!/usr/bin/env bash
# See the bridge work on a bare Debian/Ubuntu machine, without Docker:
#   bash examples/demo/run.sh            # run, print the comparison, stop everything
#   bash examples/demo/run.sh -keep      # leave it all running until Ctrl-C
#
# It installs InfluxDB 1.x from Debian (package influxdb) if influxd is
# missing, builds the pinned Traefik (a few minutes the first time, cached in
# e2e/.cache) and the bridge, then starts on loopback:
#   Traefik     examples/traefik/traefik.yml + dynamic.yml (web :8000, websecure :8443, metrics :9100)
#   a backend   127.0.0.1:8081
#   InfluxDB    HTTPS with authentication, on a free port, in a temporary directory
#   the bridge  examples/bridge/sidecar.yaml (listen :9180)
# sends traffic through Traefik, prints requests per service and status code as
# InfluxDB holds them next to Traefik's own counters, with p95 latency, and
# stops everything it started, also on Ctrl-C. Needs Go 1.26 or newer.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"

if ! command -v go >/dev/null 2>&1; then
	echo "demo: Go is required (https://go.dev/dl/, 1.26 or newer)" >&2
	exit 1
fi

if ! command -v influxd >/dev/null 2>&1; then
	echo "demo: influxd not found; installing Debian's influxdb package"
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		sudo="sudo"
	fi
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
	# The package may start its own influxd on :8086; the demo runs a
	# separate one on a free port and leaves that one alone.
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q influxdb
fi

cd "$root/e2e"
mkdir -p .cache
go build -o .cache/demo ./cmd/demo
# exec: Ctrl-C reaches the demo, which stops what it started.
exec .cache/demo "$@"
