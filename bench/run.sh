#!/usr/bin/env bash
# The full measurement behind BENCHMARKS.md, in order: the side-by-side
# comparison, the bridge as a sidecar, and the micro-benchmarks. Run it on a
# quiet machine (CPU time is per process, but caches and clocks are shared).
# Results land in $OUT (default results/<UTC time>): compare.md, sidecar.md,
# micro.txt, and each run's configs, logs and results.json.
#
#   bash bench/run.sh                 # about 30 minutes on 2 cores
#   ROUNDS=5 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")"
out=${OUT:-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out" .cache
[[ -x .cache/telegraf ]] || bash tools/telegraf/build.sh
# Built as the Makefile and the Dockerfile build it, so what is measured is
# what ships: no cgo, no symbol table, no DWARF (fewer file pages in RSS).
(cd .. && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bench/.cache/traefik-influxdb-bridge ./cmd/traefik-influxdb-bridge)
go build -o .cache/compare ./cmd/compare
(cd .. && git log -1 --format='bridge at commit %H (%cI)') >"$out/commit.txt" 2>/dev/null || true

# bridge-shipped is the bridge with examples/bridge/sidecar.yaml as it ships
# (disk buffer fsynced every scrape, HTTPS and auth, self-metrics); Telegraf
# is answered in protobuf, as a real Traefik answers its Accept header.
.cache/compare -services "${SERVICES:-20,100,500}" -rounds "${ROUNDS:-3}" -scrapes "${SCRAPES:-10}" \
	-tools "${TOOLS:-bridge,bridge-shipped,bridge-telegraf,telegraf}" \
	-interval "${INTERVAL:-2s}" -out "$out/compare" >"$out/compare.md" 2>"$out/compare.log"
# Several sidecar runs each: near the 0.2 % line one run decides nothing.
.cache/compare -sidecar-only -sidecar-tools "${SIDECAR_TOOLS:-bridge,bridge-shipped}" -sidecar-services 20 \
	-sidecar-interval 10s -sidecar-duration "${SIDECAR_DURATION:-2m}" -sidecar-rounds "${SIDECAR_ROUNDS:-3}" \
	-out "$out/sidecar" >"$out/sidecar.md" 2>"$out/sidecar.log"
go test ./pipeline -run '^$' -bench . -benchtime "${BENCHTIME:-10x}" >"$out/micro.txt" 2>&1
cat "$out/compare.md" "$out/sidecar.md"
echo "results in $out"
