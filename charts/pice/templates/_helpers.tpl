{{/* Name of the chart, overridable with nameOverride. */}}
{{- define "pice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the release's namespaced objects: the release name, with the chart name appended unless
the release name already contains it; fullnameOverride replaces it.
*/}}
{{- define "pice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "pice.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "pice.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Name of the release's cluster-scoped objects (ClusterRole, ClusterRoleBinding): the namespaced
name plus the release namespace, so releases of the same name in two namespaces do not clash.
*/}}
{{- define "pice.clusterName" -}}
{{- printf "%s-%s" (include "pice.fullname" .) .Release.Namespace }}
{{- end }}

{{/* Labels on every object of the chart. */}}
{{- define "pice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "pice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "pice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference from {repository, tag}; the tag defaults to the chart's appVersion. */}}
{{- define "pice.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}

{{/*
The operator's API permissions, from files/operator-rules.yaml (the one place they are written),
as a map with keys `cluster` (ClusterRole rules) and `leaderElection` (Role rules).
*/}}
{{- define "pice.rules" -}}
{{- $rules := tpl (.Files.Get "files/operator-rules.yaml") . | fromYaml }}
{{- if hasKey $rules "Error" }}
{{- fail (printf "files/operator-rules.yaml is not valid YAML: %s" $rules.Error) }}
{{- end }}
{{- if not (and $rules.cluster $rules.leaderElection) }}
{{- fail "files/operator-rules.yaml must have the lists `cluster` and `leaderElection`" }}
{{- end }}
{{- toYaml $rules }}
{{- end }}
