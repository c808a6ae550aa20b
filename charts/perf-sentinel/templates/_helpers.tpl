{{/* Names, labels and the values every template shares. */}}

{{- define "perf-sentinel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "perf-sentinel.fullname" -}}
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

{{/* The headless Service: one DNS record per pod. */}}
{{- define "perf-sentinel.headlessName" -}}
{{- printf "%s-headless" (include "perf-sentinel.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "perf-sentinel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "perf-sentinel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "perf-sentinel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "perf-sentinel.labels" -}}
helm.sh/chart: {{ include "perf-sentinel.chart" . }}
{{ include "perf-sentinel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: daemon
app.kubernetes.io/part-of: perf-sentinel
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "perf-sentinel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "perf-sentinel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "perf-sentinel.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* True when the pods get a persistent volume for the ack store. */}}
{{- define "perf-sentinel.persistent" -}}
{{- if and (eq .Values.workload.kind "StatefulSet") .Values.workload.statefulset.persistence.enabled }}true{{ end }}
{{- end }}

{{/* The directory of the ack store: the persistent volume, else the emptyDir. */}}
{{- define "perf-sentinel.dataDir" -}}
{{- if include "perf-sentinel.persistent" . }}
{{- .Values.workload.statefulset.persistence.mountPath | trimSuffix "/" }}
{{- else }}
{{- .Values.acks.dataDir | trimSuffix "/" }}
{{- end }}
{{- end }}

{{- define "perf-sentinel.pluginsDelivered" -}}
{{- if or .Values.plugins.images .Values.plugins.existingVolume }}true{{ end }}
{{- end }}

{{- define "perf-sentinel.configPath" -}}
{{- printf "%s/.perf-sentinel.toml" (.Values.config.mountPath | trimSuffix "/") }}
{{- end }}

{{/* PromQL matchers for this release's series. */}}
{{- define "perf-sentinel.ruleSelector" -}}
{{- if .Values.prometheusRule.selector }}
{{- .Values.prometheusRule.selector }}
{{- else }}
{{- printf "job=%q, namespace=%q" (include "perf-sentinel.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/* Probe scheme: the HTTP port speaks TLS only when TLS is on. */}}
{{- define "perf-sentinel.scheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}
