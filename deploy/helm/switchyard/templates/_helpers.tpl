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

{{/* "true" when the Gateway API is served: gatewayAPI.enabled true, or auto and the cluster has the CRDs. */}}
{{- define "switchyard.gatewayAPI" -}}
{{- $enabled := toString .Values.gatewayAPI.enabled -}}
{{- if eq $enabled "auto" -}}
{{- .Capabilities.APIVersions.Has "gateway.networking.k8s.io/v1/GatewayClass" -}}
{{- else if has $enabled (list "true" "false") -}}
{{- $enabled -}}
{{- else -}}
{{- fail (printf "gatewayAPI.enabled: want true, false or auto, not %q" $enabled) -}}
{{- end -}}
{{- end -}}
