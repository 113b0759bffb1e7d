#!/usr/bin/env bash
# Installs what the test suites need on a Debian machine: influxd (Debian's
# package influxdb, 1.6.x). The suites start their own influxd on free
# loopback ports; the packaged service is not used. Idempotent; needs root.
set -euo pipefail

# influxd for the suites; openssl for the docker-compose example's setup.sh,
# which the deployment tests run.
missing=()
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-test-deps: influxd present: $(command -v influxd); openssl present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: missing ${missing[*]}; installing needs root (apt-get install ${missing[*]})" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# The package's post-install may try to start a system service; in a
# container without an init system that fails harmlessly, which is why
# policy-rc.d refuses it for the duration of the install.
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	created_policy=1
fi
apt-get install -y --no-install-recommends "${missing[@]}"
if [ -n "$created_policy" ]; then rm -f "$policy"; fi
command -v influxd
