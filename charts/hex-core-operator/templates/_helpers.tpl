{{/* Full name: the release name, or release-chart when the release name does not contain it. */}}
{{- define "hex-core-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hex-core-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hex-core-operator.labels" -}}
{{ include "hex-core-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hex-core
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "hex-core-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hex-core-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "hex-core-operator.leaseName" -}}
{{- default (include "hex-core-operator.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/*
The rules the operator needs in every namespace it watches; the same as deploy/operator.yaml
(minus Leases, which get their own Role in the release namespace). operator/tests/chart.rs runs
the operator as this ServiceAccount and fails on any forbidden request.
*/}}
{{- define "hex-core-operator.rules" -}}
- apiGroups: ["hex-core.dev"]
  resources: ["modelcatalogs", "hexcoreservices"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["hex-core.dev"]
  resources: ["modelcatalogs/status", "hexcoreservices/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Referenced Secrets are read (and watched) for their content hash and the admin token; the
# per-service admin-token Secret is created once.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
