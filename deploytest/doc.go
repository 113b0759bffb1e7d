// Package deploytest checks what ships next to the binary: the Helm chart, the Dockerfile, the docker-compose
// example and the Grafana dashboards. It is a module of its own so that Helm, k8s.io/api and compose-go stay out
// of the bridge's dependencies; its tests run real tools (helm as a Go tool, go build, influxd) against the files
// in the repository.
package deploytest
