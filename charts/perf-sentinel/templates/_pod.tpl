{{/* The pod template shared by the Deployment, the DaemonSet and the StatefulSet. */}}
{{- define "perf-sentinel.podTemplate" -}}
{{- $dataDir := include "perf-sentinel.dataDir" . -}}
metadata:
  labels:
    {{- include "perf-sentinel.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Any change to the configuration (TOML, fragments, baseline, chart
    # settings) changes this hash and so rolls the pods: the daemon reads its
    # configuration once, at startup.
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "perf-sentinel.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ .Values.workload.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- if .Values.plugins.images }}
  initContainers:
    {{- range .Values.plugins.images }}
    - name: plugin-{{ .name }}
      image: {{ .image }}
      imagePullPolicy: {{ .pullPolicy | default "IfNotPresent" }}
      {{- if .command }}
      command:
        {{- toYaml .command | nindent 8 }}
      {{- else }}
      # Copies the plugin files into the shared emptyDir; needs only `cp`
      # in the plugin image.
      command:
        - cp
        - -v
        {{- range .files }}
        - {{ . }}
        {{- end }}
        - {{ $.Values.plugins.mountPath | trimSuffix "/" }}/
      {{- end }}
      securityContext:
        {{- toYaml $.Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml $.Values.plugins.copierResources | nindent 8 }}
      volumeMounts:
        - name: plugins
          mountPath: {{ $.Values.plugins.mountPath }}
    {{- end }}
  {{- end }}
  containers:
    - name: perf-sentinel
      image: {{ include "perf-sentinel.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - watch
        - --config
        - {{ include "perf-sentinel.configPath" . }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      # Relative paths in the configuration, and the CI baseline
      # .perf-sentinel-acknowledgments.toml, are found from here.
      workingDir: {{ .Values.config.mountPath }}
      ports:
        - name: otlp-grpc
          containerPort: {{ .Values.service.ports.grpc }}
          protocol: TCP
        - name: otlp-http
          containerPort: {{ .Values.service.ports.http }}
          protocol: TCP
      {{- if or .Values.acks.apiKey.existingSecret .Values.extraEnv }}
      env:
        {{- with .Values.acks.apiKey.existingSecret }}
        - name: PERF_SENTINEL_ACK_API_KEY
          valueFrom:
            secretKeyRef:
              name: {{ . }}
              key: {{ $.Values.acks.apiKey.key }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      {{- with .Values.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.probes.startup }}
      {{- if .enabled }}
      startupProbe:
        httpGet:
          path: /health
          port: otlp-http
          scheme: {{ include "perf-sentinel.scheme" $ }}
        periodSeconds: {{ .periodSeconds }}
        failureThreshold: {{ .failureThreshold }}
        timeoutSeconds: {{ .timeoutSeconds }}
      {{- end }}
      {{- end }}
      {{- with .Values.probes.liveness }}
      {{- if .enabled }}
      livenessProbe:
        httpGet:
          path: /health
          port: otlp-http
          scheme: {{ include "perf-sentinel.scheme" $ }}
        periodSeconds: {{ .periodSeconds }}
        failureThreshold: {{ .failureThreshold }}
        timeoutSeconds: {{ .timeoutSeconds }}
      {{- end }}
      {{- end }}
      {{- with .Values.probes.readiness }}
      {{- if .enabled }}
      readinessProbe:
        httpGet:
          path: /health
          port: otlp-http
          scheme: {{ include "perf-sentinel.scheme" $ }}
        periodSeconds: {{ .periodSeconds }}
        failureThreshold: {{ .failureThreshold }}
        timeoutSeconds: {{ .timeoutSeconds }}
      {{- end }}
      {{- end }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: {{ .Values.config.mountPath }}
          readOnly: true
        - name: data
          mountPath: {{ $dataDir }}
        {{- if .Values.tls.enabled }}
        - name: tls
          mountPath: {{ .Values.tls.mountPath }}
          readOnly: true
        {{- end }}
        {{- if include "perf-sentinel.pluginsDelivered" . }}
        - name: plugins
          mountPath: {{ .Values.plugins.mountPath }}
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "perf-sentinel.fullname" . }}
        items:
          - key: perf-sentinel.toml
            path: .perf-sentinel.toml
          - key: 00-helm-chart.toml
            path: .perf-sentinel.d/00-helm-chart.toml
          {{- range $name, $_ := .Values.config.fragments }}
          - key: {{ $name }}
            path: .perf-sentinel.d/{{ $name }}
          {{- end }}
          {{- if .Values.acks.baseline }}
          - key: perf-sentinel-acknowledgments.toml
            path: .perf-sentinel-acknowledgments.toml
          {{- end }}
    {{- if not (include "perf-sentinel.persistent" .) }}
    # The ack store without persistence: lost with the pod.
    - name: data
      emptyDir:
        sizeLimit: {{ .Values.acks.sizeLimit }}
    {{- end }}
    {{- if .Values.tls.enabled }}
    - name: tls
      secret:
        secretName: {{ .Values.tls.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ .Values.tls.certKey }}
            path: {{ .Values.tls.certKey }}
          - key: {{ .Values.tls.keyKey }}
            path: {{ .Values.tls.keyKey }}
    {{- end }}
    {{- if .Values.plugins.images }}
    - name: plugins
      emptyDir:
        sizeLimit: {{ .Values.plugins.sizeLimit }}
    {{- else if .Values.plugins.existingVolume }}
    - name: plugins
      {{- toYaml .Values.plugins.existingVolume | nindent 6 }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
