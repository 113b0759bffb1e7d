#!/usr/bin/env bash
# Builds Telegraf v1.37.2 with only the two plugins the comparison uses.
# go mod tidy is deliberately not run here: it reaches Telegraf's test
# dependencies, which the module proxy does not serve.
set -euo pipefail
cd "$(dirname "$0")"
out=../../.cache/telegraf
if [[ -x "$out" ]]; then
	echo "telegraf already built: $out"
	exit 0
fi
if ! grep -q 'tool github.com/influxdata/telegraf/cmd/telegraf' go.mod; then
	go get -tool github.com/influxdata/telegraf/cmd/telegraf@v1.37.2
fi
go build -mod=mod -trimpath -tags "custom,inputs.prometheus,outputs.influxdb" \
	-o "$out" github.com/influxdata/telegraf/cmd/telegraf
echo "built $out"
