{{/* The app.kubernetes.io/name of every object, and the selectors' too. */}}
{{- define "bgplb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: with the release named bgplb (as the
docs install it) the names are deploy/manifests' (bgplb-controller, ...).
*/}}
{{- define "bgplb.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := include "bgplb.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Labels of every object: the selector's, and Helm's own. Call with
(dict "root" $ "component" "controller"); the component may be "".
*/}}
{{- define "bgplb.labels" -}}
{{ include "bgplb.selectorLabels" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The pods' labels and the workloads' selectors: the same two as
deploy/manifests, so that a release can take over objects `kubectl apply`
created (selectors cannot change).
*/}}
{{- define "bgplb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bgplb.name" .root }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* The ServiceAccount a role runs as. Call with (dict "root" $ "role" "speaker"). */}}
{{- define "bgplb.serviceAccountName" -}}
{{- $sa := (index .root.Values .role).serviceAccount }}
{{- if $sa.create }}
{{- default (printf "%s-%s" (include "bgplb.fullname" .root) .role) $sa.name }}
{{- else }}
{{- required (printf "%s.serviceAccount.name: the ServiceAccount to run as when %s.serviceAccount.create is false" .role .role) $sa.name }}
{{- end }}
{{- end }}

{{- define "bgplb.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
One flag as an argument list item, left out when the value is null (the
binary's default then applies); "" is passed, as an empty value. Lists
are joined with commas. Call with (list "flag-name" value).
*/}}
{{- define "bgplb.flag" -}}
{{- $name := index . 0 }}
{{- $v := index . 1 }}
{{- if kindIs "slice" $v }}
{{- if $v }}
- {{ printf "--%s=%s" $name (join "," $v) | quote }}
{{- end }}
{{- else if not (kindIs "invalid" $v) }}
- {{ printf "--%s=%v" $name $v | quote }}
{{- end }}
{{- end }}

{{/* The port of a host:port address. */}}
{{- define "bgplb.port" -}}
{{- regexFind "[0-9]+$" . }}
{{- end }}

{{/* The host of a host:port address, without brackets; "" for ":port". */}}
{{- define "bgplb.host" -}}
{{- regexReplaceAll ":[0-9]+$" . "" | trimPrefix "[" | trimSuffix "]" }}
{{- end }}

{{/* "true" when an address listens on loopback only. */}}
{{- define "bgplb.loopback" -}}
{{- $h := include "bgplb.host" . }}
{{- if or (hasPrefix "127." $h) (eq $h "::1") (eq $h "localhost") }}true{{ end }}
{{- end }}
