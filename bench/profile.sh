#!/usr/bin/env bash
# Profiles the bridge (and Telegraf, when built) under the load harness.
# The bridge is built unchanged except for one file added by `go build
# -overlay` (profiling/pprof.go.overlay) that serves net/http/pprof on a
# loopback port; Telegraf has --pprof-addr. Profiles land next to the logs
# of the run (-out), and a summary of each is printed.
#
#   bash bench/profile.sh -services 500 -scrapes 8            # both tools
#   bash bench/profile.sh -services 100 -tools bridge
#
# Profiled runs are for finding costs, not for the tables: sampling costs
# the tool a little CPU.
set -euo pipefail
caller=$(pwd)
cd "$(dirname "$0")"
mkdir -p .cache
here=$(pwd)
overlay=$(mktemp)
trap 'rm -f "$overlay"' EXIT
printf '{"Replace":{"%s":"%s"}}\n' \
	"$(cd .. && pwd)/cmd/traefik-influxdb-bridge/zz_bench_pprof.go" "$here/profiling/pprof.go.overlay" >"$overlay"
(cd .. && go build -trimpath -overlay "$overlay" -o bench/.cache/traefik-influxdb-bridge-pprof ./cmd/traefik-influxdb-bridge)
go build -o .cache/compare ./cmd/compare
out=${PROFILE_OUT:-results/profile-$(date -u +%Y%m%dT%H%M%SZ)}
[[ -n "${PROFILE_OUT:-}" && "$out" != /* ]] && out="$caller/$out" # relative to where it was called from
tools=bridge,bridge-telegraf
[[ -x .cache/telegraf ]] && tools=$tools,telegraf
.cache/compare -pprof -bridge .cache/traefik-influxdb-bridge-pprof -rounds 1 -tools "$tools" -out "$out" "$@"
for p in "$out"/*/*.cpu.pprof; do
	echo "== $p (CPU, top by cumulative)"
	go tool pprof -top -cum -nodecount 25 "$p" 2>/dev/null | sed -n '4,32p'
done
for p in "$out"/*/*.heap.pprof; do
	echo "== $p (heap in use)"
	go tool pprof -sample_index=inuse_space -top -nodecount 8 "$p" 2>/dev/null | sed -n '4,14p'
done
