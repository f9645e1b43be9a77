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
The rules the operator needs in every namespace it watches: exactly operator/src/rbac.rs (NAMESPACED),
the same as deploy/operator.yaml minus Leases, which get their own Role in the release namespace.
operator/tests/rbac.rs compares them; operator/tests/chart.rs runs the operator as this
ServiceAccount and fails on any forbidden request.
*/}}
{{- define "hex-core-operator.rules" -}}
# Both controllers list and watch their resources; status is written by server-side apply.
- apiGroups: ["hex-core.dev"]
  resources: ["modelcatalogs", "hexcoreservices"]
  verbs: ["list", "watch"]
- apiGroups: ["hex-core.dev"]
  resources: ["modelcatalogs/status", "hexcoreservices/status"]
  verbs: ["patch"]
# Children: watched by label into the operator's caches, server-side applied (create when absent).
- apiGroups: [""]
  resources: ["configmaps", "services", "persistentvolumeclaims"]
  verbs: ["list", "watch", "create", "patch"]
# Secrets are watched as metadata only (never listed with their content); the ones a
# HexCoreService references are read one by one; the per-service admin token is created once.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create"]
# The HexCoreServices' pods (by label): why they do not run.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The replicas' addresses (the EndpointSlices of the operator's Services, by label).
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
