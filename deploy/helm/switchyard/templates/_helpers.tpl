{{/* The DaemonSet's selector. */}}
{{- define "switchyard.selector" -}}
app.kubernetes.io/name: switchyard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: router
{{- end -}}

{{/* Labels on every object. */}}
{{- define "switchyard.labels" -}}
{{ include "switchyard.selector" . }}
{{- end -}}

{{/* IPVS mode needs the host's network namespace. */}}
{{- define "switchyard.hostNetwork" -}}
{{- if or .Values.hostNetwork .Values.ipvs.enabled }}true{{ else }}false{{ end -}}
{{- end -}}

{{- define "switchyard.tlsSecret" -}}
{{- default (printf "%s-default-tls" .Release.Name) .Values.tls.defaultCertificate.secretName -}}
{{- end -}}
