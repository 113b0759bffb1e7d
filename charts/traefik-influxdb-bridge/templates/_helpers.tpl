{{/* Names are cut to 63 characters, the DNS-label limit Kubernetes enforces on them. */}}
{{- define "tib.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tib.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tib.labels" -}}
helm.sh/chart: {{ include "tib.chart" . }}
{{ include "tib.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tib.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "tib.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tib.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the InfluxDB password: the user's, the chart's, or none. */}}
{{- define "tib.secretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else if .Values.auth.password }}
{{- include "tib.fullname" . }}
{{- end }}
{{- end }}

{{- define "tib.secretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}password{{ end }}
{{- end }}

{{- define "tib.discoveryServiceName" -}}
{{- default (printf "%s-traefik" (include "tib.fullname" .)) .Values.discovery.serviceName | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tib.discoveryNamespace" -}}
{{- default .Release.Namespace .Values.discovery.namespace }}
{{- end }}

{{/* Paths inside the container; the sidecar values file for the Traefik chart uses the same ones. */}}
{{- define "tib.configDir" -}}/etc/traefik-influxdb-bridge/config{{- end }}
{{- define "tib.secretDir" -}}/etc/traefik-influxdb-bridge/secret{{- end }}
{{- define "tib.caDir" -}}/etc/traefik-influxdb-bridge/ca{{- end }}
{{- define "tib.bufferDir" -}}/var/lib/traefik-influxdb-bridge{{- end }}

{{/*
tib.config is the bridge's config file: .Values.config plus the keys that follow from the deployment.
*/}}
{{- define "tib.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $traefik := $cfg.traefik }}
{{- if not $traefik.urls }}
{{- if eq .Values.mode "sidecar" }}
{{- $_ := set $traefik "urls" (list (printf "http://127.0.0.1:%d%s" (int .Values.discovery.port) .Values.discovery.path)) }}
{{- else }}
{{- $url := printf "dns+%s://%s.%s.svc:%d%s" .Values.discovery.scheme (include "tib.discoveryServiceName" .) (include "tib.discoveryNamespace" .) (int .Values.discovery.port) .Values.discovery.path }}
{{- $_ := set $traefik "urls" (list $url) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "listen" (printf ":%d" (int .Values.containerPort)) }}
{{- $_ := set $cfg.buffer "dir" (include "tib.bufferDir" .) }}
{{- if and (include "tib.secretName" .) (eq .Values.auth.mountAs "file") }}
{{- $_ := set $cfg.influxdb "password_file" (printf "%s/%s" (include "tib.secretDir" .) (include "tib.secretKey" .)) }}
{{- end }}
{{- if .Values.influxdbCA.existingSecret }}
{{- $_ := set $cfg.influxdb.tls "ca_file" (printf "%s/%s" (include "tib.caDir" .) .Values.influxdbCA.key) }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}
