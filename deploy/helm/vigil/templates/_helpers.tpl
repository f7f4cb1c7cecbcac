{{/* The chart's name, at most 63 characters (a label value). */}}
{{- define "vigil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the release's objects. */}}
{{- define "vigil.fullname" -}}
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

{{- define "vigil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vigil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vigil.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "vigil.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "vigil.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}

{{- define "vigil.secretName" -}}
{{- .Values.secret.existingSecret | default (include "vigil.fullname" .) }}
{{- end }}

{{/*
vigil.yaml: the configuration from values, with the keys the chart owns laid over it (the ports,
probes and mounts below depend on them).
*/}}
{{- define "vigil.config" -}}
{{- $owned := dict "agent" (dict
      "data_dir" "/var/lib/vigil"
      "api" (dict "listen" "0.0.0.0:7070" "token" "${file:/etc/vigil/secrets/api-token}")
      "metrics" (dict "listen" "0.0.0.0:9464")
      "audit" (dict "key" "${file:/etc/vigil/secrets/audit-key}")) }}
{{- toYaml (mustMergeOverwrite (deepCopy (.Values.config | default dict)) $owned) }}
{{- end }}

{{/* The vigil container; `native` makes it a native sidecar (an init container that keeps running). */}}
{{- define "vigil.container" -}}
- name: vigil
  image: {{ include "vigil.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if .native }}
  restartPolicy: Always
  {{- end }}
  args: ["run", "-c", "/etc/vigil/config/vigil.yaml"]
  env:
    - name: NODE_ENV
      value: production
    - name: NODE_OPTIONS
      value: {{ .Values.nodeOptions | quote }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: api
      containerPort: 7070
      protocol: TCP
    - name: metrics
      containerPort: 9464
      protocol: TCP
  {{- with .Values.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: vigil-config
      mountPath: /etc/vigil/config
      readOnly: true
    - name: vigil-secrets
      mountPath: /etc/vigil/secrets
      readOnly: true
    - name: vigil-data
      mountPath: /var/lib/vigil
    - name: vigil-tmp
      mountPath: /tmp
{{- end }}
