#!/usr/bin/env bash
# Makes what the compose file needs and git does not hold: a throw-away CA with
# certificates for InfluxDB (HTTPS) and Traefik (websecure), random passwords
# in secrets/, and .env for the images that take their passwords from the
# environment. Existing files are kept, so running it twice changes nothing.
#
#   ./setup.sh [DIR]    (DIR defaults to this script's directory)
set -euo pipefail

dir=${1:-$(cd "$(dirname "$0")" && pwd)}
certs=$dir/certs
secrets=$dir/secrets
mkdir -p "$certs" "$secrets"

days=825

if [[ ! -f $certs/ca.pem ]]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
		-subj "/CN=traefik-influxdb-bridge demo CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$certs/ca-key.pem" -out "$certs/ca.pem" 2>/dev/null
fi

# server NAME DNS... issues certs/NAME.pem and certs/NAME-key.pem for the DNS names.
server() {
	local name=$1
	shift
	[[ -f $certs/$name.pem ]] && return
	local san
	san=$(printf 'DNS:%s,' "$@")
	san=${san%,},IP:127.0.0.1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
		-keyout "$certs/$name-key.pem" -out "$certs/$name.csr" 2>/dev/null
	openssl x509 -req -in "$certs/$name.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca-key.pem" -CAcreateserial \
		-days "$days" -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san") \
		-out "$certs/$name.pem" 2>/dev/null
	rm -f "$certs/$name.csr"
}

server influxdb influxdb localhost
server traefik traefik localhost shop.example.com

# The containers run as users other than yours (the bridge as 65532), so the
# demo's keys and passwords are world-readable. Do not reuse them.
chmod 644 "$certs"/*.pem
chmod 600 "$certs/ca-key.pem"

secret() {
	local file=$secrets/$1
	[[ -s $file ]] || { openssl rand -hex 16 >"$file"; }
	chmod 644 "$file"
	tr -d '\n' <"$file"
}

influx_pw=$(secret influxdb-password)
admin_pw=$(secret influxdb-admin-password)
grafana_influx_pw=$(secret grafana-influxdb-password)
grafana_admin_pw=$(secret grafana-admin-password)

if [[ ! -f $dir/.env ]]; then
	cat >"$dir/.env" <<ENV
# Written by setup.sh; the same values are in secrets/.
INFLUXDB_PASSWORD=$influx_pw
INFLUXDB_ADMIN_PASSWORD=$admin_pw
GRAFANA_INFLUXDB_PASSWORD=$grafana_influx_pw
GRAFANA_ADMIN_PASSWORD=$grafana_admin_pw
ENV
fi
echo "ready: docker compose -f $dir/compose.yaml up -d, then Grafana on http://localhost:3000 (admin / secrets/grafana-admin-password)"
