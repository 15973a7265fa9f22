{{/*
Helm's labels on every object of the chart. The generated templates
(zz_generated_*, written by hack/helm-chart from dist/) keep config/'s labels
and add these instead of app.kubernetes.io/managed-by: kustomize; selectors and
pod labels stay as config/ has them.
*/}}
{{- define "authstack-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
