{{/*
The chart's own configuration fragment, `.perf-sentinel.d/00-helm-chart.toml`:
what the pod's wiring decides (listen address, ports, volumes, TLS files,
plugin directory). Fragments merge first, so a key the user sets wins; the
render guards refuse the overrides that would break the pod.
*/}}
{{- define "perf-sentinel.chartFragment" -}}
# Written by the perf-sentinel Helm chart from its values.
[daemon]
listen_address = {{ .Values.listenAddress | toString | toJson }}
listen_port_grpc = {{ .Values.service.ports.grpc | int }}
listen_port_http = {{ .Values.service.ports.http | int }}
{{- if .Values.tls.enabled }}
tls_cert_path = {{ printf "%s/%s" (.Values.tls.mountPath | trimSuffix "/") .Values.tls.certKey | toJson }}
tls_key_path = {{ printf "%s/%s" (.Values.tls.mountPath | trimSuffix "/") .Values.tls.keyKey | toJson }}
{{- end }}

[daemon.ack]
storage_path = {{ printf "%s/acks.jsonl" (include "perf-sentinel.dataDir" .) | toJson }}
{{- if .Values.acks.apiKey.existingSecret }}
api_key = "env:PERF_SENTINEL_ACK_API_KEY"
{{- end }}
{{- if include "perf-sentinel.pluginsDelivered" . }}

[plugins]
{{ ternary "optional" "paths" .Values.plugins.optional }} = [{{ .Values.plugins.mountPath | toJson }}]
{{- end }}
{{- end }}
