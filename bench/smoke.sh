#!/usr/bin/env bash
# Quick check that the load harness and the bridge work together: a tiny page,
# 3 scrapes at 1 s, the bridge in both schemas (and Telegraf too if
# tools/telegraf/build.sh has built it). Fails if a tool delivers nothing,
# sends an uncompressed or unparsable write, or exits badly. Under a minute.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p .cache
(cd .. && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bench/.cache/traefik-influxdb-bridge ./cmd/traefik-influxdb-bridge)
go build -o .cache/compare ./cmd/compare
exec .cache/compare -smoke -out "${SMOKE_OUT:-.cache/smoke}" "$@"
