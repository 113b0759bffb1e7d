package collector

import "strings"

// traefikV2Names maps Traefik's Prometheus family names to the measurement
// names Traefik v2's own InfluxDB exporter wrote (pkg/metrics/influxdb.go in
// Traefik v2.11; traefik.open.connections from v3's InfluxDB2 exporter), so
// that dashboards built on that exporter keep working. The names are not a
// mechanical rewrite of the Prometheus ones ("reloads" -> "reload",
// "_seconds" dropped, "not_after" -> "notAfterTimestamp"), hence a table.
var traefikV2Names = map[string]string{
	"traefik_config_reloads_total":         "traefik.config.reload.total",
	"traefik_config_reloads_failure_total": "traefik.config.reload.total.failure",
	"traefik_config_last_reload_success":   "traefik.config.reload.lastSuccessTimestamp",
	"traefik_config_last_reload_failure":   "traefik.config.reload.lastFailureTimestamp",
	"traefik_open_connections":             "traefik.open.connections",
	"traefik_tls_certs_not_after":          "traefik.tls.certs.notAfterTimestamp",

	"traefik_entrypoint_requests_total":           "traefik.entrypoint.requests.total",
	"traefik_entrypoint_requests_tls_total":       "traefik.entrypoint.requests.tls.total",
	"traefik_entrypoint_request_duration_seconds": "traefik.entrypoint.request.duration",
	"traefik_entrypoint_requests_bytes_total":     "traefik.entrypoint.requests.bytes.total",
	"traefik_entrypoint_responses_bytes_total":    "traefik.entrypoint.responses.bytes.total",
	"traefik_entrypoint_open_connections":         "traefik.entrypoint.connections.open", // Traefik v2
	"traefik_router_requests_total":               "traefik.router.requests.total",
	"traefik_router_requests_tls_total":           "traefik.router.requests.tls.total",
	"traefik_router_request_duration_seconds":     "traefik.router.request.duration",
	"traefik_router_requests_bytes_total":         "traefik.router.requests.bytes.total",
	"traefik_router_responses_bytes_total":        "traefik.router.responses.bytes.total",
	"traefik_router_open_connections":             "traefik.router.connections.open", // Traefik v2
	"traefik_service_requests_total":              "traefik.service.requests.total",
	"traefik_service_requests_tls_total":          "traefik.service.requests.tls.total",
	"traefik_service_request_duration_seconds":    "traefik.service.request.duration",
	"traefik_service_requests_bytes_total":        "traefik.service.requests.bytes.total",
	"traefik_service_responses_bytes_total":       "traefik.service.responses.bytes.total",
	"traefik_service_retries_total":               "traefik.service.retries.total",
	"traefik_service_server_up":                   "traefik.service.server.up",
	"traefik_service_open_connections":            "traefik.service.connections.open", // Traefik v2
}

// traefikMeasurement is the traefik-schema measurement for a family: the v2
// name when Traefik v2 had one, otherwise the family name with underscores
// turned into dots (families reached only by widening metrics.include).
func traefikMeasurement(family string) string {
	if m, ok := traefikV2Names[family]; ok {
		return m
	}
	return strings.ReplaceAll(family, "_", ".")
}
