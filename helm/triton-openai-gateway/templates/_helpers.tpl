{{/* Names, labels and the per-group settings shared by every template. */}}

{{- define "gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Image reference; the tag defaults to the chart's appVersion. Argument: (dict "root" $ "image" ...) */}}
{{- define "gateway.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/*
Overlay the map .over onto the map .out in place: nested maps merge key by key, everything else
(lists, scalars, false and 0 included) replaces. Sprig's merge functions cannot override a
default with false or 0, which per-group settings such as autoscaling.enabled need.
*/}}
{{- define "gateway.overlayInto" -}}
{{- $out := .out -}}
{{- range $key, $value := .over -}}
{{- $current := get $out $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- $_ := include "gateway.overlayInto" (dict "out" $current "over" $value) -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Resolve the model groups into the dict passed as argument (no YAML round trip, so numbers keep
their types): sets .groups (each group with the `triton` defaults under it, checked) and
.apiGroup (the group the API talks to: api.tritonGroup, default the first).
Use: {{- $ctx := dict "root" $ -}}{{- $_ := include "gateway.resolve" $ctx -}}
*/}}
{{- define "gateway.resolve" -}}
{{- $root := .root -}}
{{- $groups := list -}}
{{- $seen := dict -}}
{{- if not $root.Values.modelGroups -}}
{{- fail "modelGroups must name at least one model group" -}}
{{- end -}}
{{- range $group := $root.Values.modelGroups -}}
{{- if hasKey $seen $group.name -}}
{{- fail (printf "model group %q is defined twice" $group.name) -}}
{{- end -}}
{{- $_ := set $seen $group.name true -}}
{{- $merged := deepCopy $root.Values.triton -}}
{{- $_ := include "gateway.overlayInto" (dict "out" $merged "over" (deepCopy $group)) -}}
{{- $groups = append $groups $merged -}}
{{- end -}}
{{- $_ := set . "groups" $groups -}}
{{- $wanted := default (first $groups).name $root.Values.api.tritonGroup -}}
{{- range $groups -}}
{{- if eq .name $wanted -}}
{{- $_ := set $ "apiGroup" . -}}
{{- end -}}
{{- end -}}
{{- if not (hasKey . "apiGroup") -}}
{{- fail (printf "api.tritonGroup %q is not a model group" $wanted) -}}
{{- end -}}
{{- end -}}

{{/* Name of a group's objects (group names have at most 20 characters, see values.schema.json).
Argument: (dict "root" $ "group" $group) */}}
{{- define "gateway.triton.fullname" -}}
{{- printf "%s-triton-%s" (include "gateway.fullname" .root | trunc 35 | trimSuffix "-") .group.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The group's headless Service (clusterIP: None): DNS answers with the address of every ready
pod, which the API's gRPC resolver re-reads to spread requests over the group's replicas. */}}
{{- define "gateway.triton.headlessName" -}}
{{- printf "%s-triton-%s-headless" (include "gateway.fullname" .root | trunc 26 | trimSuffix "-") .group.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The API's gRPC target for a group: the headless Service's FQDN through gRPC's DNS resolver. */}}
{{- define "gateway.triton.endpointTarget" -}}
{{- printf "dns:///%s.%s.svc.%s:8001" (include "gateway.triton.headlessName" .) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{- define "gateway.triton.selectorLabels" -}}
{{ include "gateway.selectorLabels" .root }}
app.kubernetes.io/component: triton
gateway.triton/group: {{ .group.name }}
{{- end -}}

{{- define "gateway.triton.labels" -}}
{{ include "gateway.labels" .root }}
app.kubernetes.io/component: triton
gateway.triton/group: {{ .group.name }}
{{- end -}}

{{- define "gateway.api.fullname" -}}
{{- printf "%s-api" (include "gateway.fullname" . | trunc 59 | trimSuffix "-") -}}
{{- end -}}

{{- define "gateway.api.selectorLabels" -}}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/component: api
{{- end -}}

{{- define "gateway.api.labels" -}}
{{ include "gateway.labels" . }}
app.kubernetes.io/component: api
{{- end -}}

{{- define "gateway.api.secretName" -}}
{{- printf "%s-secrets" (include "gateway.api.fullname" .) -}}
{{- end -}}

{{- define "gateway.objectStore.secretName" -}}
{{- printf "%s-object-store" (include "gateway.fullname" . | trunc 50 | trimSuffix "-") -}}
{{- end -}}

{{- define "gateway.pvc.claimName" -}}
{{- default (printf "%s-models" (include "gateway.fullname" . | trunc 56 | trimSuffix "-")) .Values.modelRepository.pvc.existingClaim -}}
{{- end -}}
