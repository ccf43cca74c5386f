{{/* Name of the QdrantCluster: fullnameOverride or the release name. */}}
{{- define "qdrant-cluster.name" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of the chart's own objects. */}}
{{- define "qdrant-cluster.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/part-of: qdrant
app.kubernetes.io/instance: {{ include "qdrant-cluster.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
The image the peers run, as the operator computes it: `image` with `version` as tag unless the
image already has a tag or digest. Empty values fall back to the CRD defaults (kept equal to the
CRD by scripts/check-charts.sh).
*/}}
{{- define "qdrant-cluster.imageRef" -}}
{{- $image := default "qdrant/qdrant" .Values.image -}}
{{- $version := default "v1.19.0" .Values.version -}}
{{- $last := last (splitList "/" $image) -}}
{{- if or (contains "@" $image) (contains ":" $last) -}}
{{- $image -}}
{{- else -}}
{{- printf "%s:%s" $image $version -}}
{{- end -}}
{{- end -}}
