{{/* Chart name. */}}
{{- define "qdrant-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name if it contains the chart name, else <release>-<chart>. */}}
{{- define "qdrant-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels (as deploy/operator, plus the release instance). */}}
{{- define "qdrant-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qdrant-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "qdrant-operator.labels" -}}
{{ include "qdrant-operator.selectorLabels" . }}
app.kubernetes.io/part-of: qdrant-operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "qdrant-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "qdrant-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Lease name; the binary's default is qdrant-operator. */}}
{{- define "qdrant-operator.leaseName" -}}
{{- default "qdrant-operator" .Values.leaderElection.leaseName -}}
{{- end -}}

{{- define "qdrant-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
