#!/usr/bin/env bash
# Installs what the test suites need on a Debian machine: influxd (Debian's
# package influxdb, 1.6.x) and dnsmasq (dnsmasq-base: the binary without the
# service). The suites start their own influxd and dnsmasq on free loopback
# ports; the packaged services are not used. Idempotent; needs root.
set -euo pipefail

# influxd for the suites; dnsmasq for the collector's dns+http:// test, which
# looks in /usr/sbin too, off a non-root PATH; openssl for the docker-compose
# example's setup.sh, which the deployment tests run.
dnsmasq_bin() { command -v dnsmasq 2>/dev/null || { [ -x /usr/sbin/dnsmasq ] && echo /usr/sbin/dnsmasq; }; }
missing=()
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
dnsmasq_bin >/dev/null || missing+=(dnsmasq-base)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-test-deps: influxd present: $(command -v influxd); dnsmasq present: $(dnsmasq_bin); openssl present"
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
dnsmasq_bin
