{{/*
Render guards: values that would give pods that cannot work are refused at
`helm template` / `helm install` time, with the value to change. The TOML
the user writes is parsed here only for the keys the chart itself owns (the
daemon checks everything else at startup, and `perf-sentinel config check`
before it).
*/}}
{{- define "perf-sentinel.validate" -}}
{{- $v := .Values }}
{{- $kind := $v.workload.kind }}

{{- if and (eq $kind "DaemonSet") (not $v.workload.daemonset.spanRoutingByTraceId) }}
{{- fail "workload.kind=DaemonSet runs one daemon per node, but the spans of one trace come from many nodes: each daemon would see pieces of traces and miss patterns. Route spans by trace ID in the Collectors (loadbalancing exporter with routing_key: traceID, see examples/otel-collector-sharded.yaml), then set workload.daemonset.spanRoutingByTraceId=true." }}
{{- end }}

{{- if and $v.workload.statefulset.persistence.enabled (ne $kind "StatefulSet") }}
{{- fail (printf "workload.statefulset.persistence.enabled=true needs workload.kind=StatefulSet (got %s): only a StatefulSet gives each pod its own volume for the acknowledgment store." $kind) }}
{{- end }}

{{- if regexMatch "^(127\\.|::1$|localhost$)" ($v.listenAddress | toString) }}
{{- fail (printf "listenAddress=%s is a loopback address: the Service could not reach the daemon. Use 0.0.0.0 or ::." $v.listenAddress) }}
{{- end }}

{{- if and $v.tls.enabled (not $v.tls.existingSecret) }}
{{- fail "tls.enabled=true needs tls.existingSecret: the name of a Secret holding the certificate chain (tls.certKey) and the private key (tls.keyKey)." }}
{{- end }}

{{- if and $v.plugins.images $v.plugins.existingVolume }}
{{- fail "plugins.images and plugins.existingVolume are both set: deliver plugins either by init containers or from an existing volume, not both." }}
{{- end }}
{{- $pluginNames := dict }}
{{- range $v.plugins.images }}
{{- if hasKey $pluginNames .name }}
{{- fail (printf "plugins.images: the name %q is used twice; each plugin image needs its own name." .name) }}
{{- end }}
{{- $_ := set $pluginNames .name true }}
{{- if and (not .files) (not .command) }}
{{- fail (printf "plugins.images[%s]: list the plugin files to copy out of the image in files (or give a command)." .name) }}
{{- end }}
{{- end }}

{{- /* The sources of configuration, in merge order (fragments by name, then the main file). */}}
{{- $sources := list }}
{{- range $name, $text := $v.config.fragments }}
{{- if not (regexMatch "^[0-9]{2}-[A-Za-z0-9_.-]+\\.toml$" $name) }}
{{- fail (printf "config.fragments: %q is not a valid fragment name: fragment names must look like NN-name.toml (two digits, a dash, letters, digits, _ . or -), for example 10-team-payments.toml." $name) }}
{{- end }}
{{- if eq $name "00-helm-chart.toml" }}
{{- fail "config.fragments: 00-helm-chart.toml is the chart's own fragment (listen address, ports, ack store, TLS, plugins); name yours otherwise." }}
{{- end }}
{{- $sources = append $sources (list (printf "config.fragments.%s" $name) $text) }}
{{- end }}
{{- $sources = append $sources (list "config.toml" $v.config.toml) }}

{{- $grace := 25000 }}
{{- range $sources }}
{{- $where := index . 0 }}
{{- $doc := fromToml (index . 1 | toString) }}
{{- if hasKey $doc "Error" }}
{{- fail (printf "%s is not valid TOML: %s" $where (get $doc "Error")) }}
{{- end }}
{{- $daemon := get $doc "daemon" }}
{{- if kindIs "map" $daemon }}
{{- range $key, $port := dict "listen_port_grpc" $v.service.ports.grpc "listen_port_http" $v.service.ports.http }}
{{- if and (hasKey $daemon $key) (ne (get $daemon $key | toString) ($port | toString)) }}
{{- fail (printf "%s sets daemon.%s = %v but the Service sends to %v: the pods would not receive that traffic. Set service.ports.%s instead (the chart writes the port for the daemon)." $where $key (get $daemon $key) $port (ternary "grpc" "http" (eq $key "listen_port_grpc"))) }}
{{- end }}
{{- end }}
{{- if and (hasKey $daemon "listen_address") (regexMatch "^(127\\.|::1$)" (get $daemon "listen_address" | toString)) }}
{{- fail (printf "%s sets daemon.listen_address = %q, a loopback address: the Service could not reach the daemon. Remove it (the chart sets listenAddress)." $where (get $daemon "listen_address")) }}
{{- end }}
{{- if and (or (hasKey $daemon "tls_cert_path") (hasKey $daemon "tls_key_path")) (not $v.tls.enabled) }}
{{- fail (printf "%s sets daemon.tls_cert_path / tls_key_path: use tls.enabled and tls.existingSecret instead, so the probes and the ServiceMonitor speak HTTPS too." $where) }}
{{- end }}
{{- if hasKey $daemon "shutdown_grace_ms" }}
{{- $grace = get $daemon "shutdown_grace_ms" | int }}
{{- end }}
{{- $ack := get $daemon "ack" }}
{{- if and (kindIs "map" $ack) (hasKey $ack "storage_path") (include "perf-sentinel.persistent" $) }}
{{- $dir := include "perf-sentinel.dataDir" $ }}
{{- if not (hasPrefix (printf "%s/" $dir) (get $ack "storage_path" | toString)) }}
{{- fail (printf "%s sets daemon.ack.storage_path = %q, outside the persistent volume mounted at %s: acknowledgments would be lost on restart (or refused on the read-only root filesystem). Remove the key (the chart points it into the volume) or use a path under %s/." $where (get $ack "storage_path") $dir $dir) }}
{{- end }}
{{- end }}
{{- end }}
{{- $plugins := get $doc "plugins" }}
{{- if and (kindIs "map" $plugins) (include "perf-sentinel.pluginsDelivered" $) }}
{{- $key := ternary "optional" "paths" $v.plugins.optional }}
{{- if and (hasKey $plugins $key) (not (has $v.plugins.mountPath (get $plugins $key))) }}
{{- fail (printf "%s sets plugins.%s, which replaces the chart's list: the delivered plugins at %s would not load. Add %q to it or remove the key." $where $key $v.plugins.mountPath $v.plugins.mountPath) }}
{{- end }}
{{- end }}
{{- end }}

{{- if ge (int $grace) (mul (int $v.workload.terminationGracePeriodSeconds) 1000 | int) }}
{{- fail (printf "workload.terminationGracePeriodSeconds=%v is not longer than the daemon's shutdown grace (%v ms): the kubelet would kill it before it has analyzed the traces it holds. Raise terminationGracePeriodSeconds or lower [daemon] shutdown_grace_ms." $v.workload.terminationGracePeriodSeconds $grace) }}
{{- end }}
{{- end }}
