{{/*
Names and labels.
*/}}
{{- define "codeq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "codeq.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "codeq.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "codeq.labels" -}}
helm.sh/chart: {{ include "codeq.chart" . }}
{{ include "codeq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "codeq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "codeq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "codeq.kvrocks.fullname" -}}
{{- printf "%s-kvrocks" (include "codeq.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "codeq.kvrocks.labels" -}}
helm.sh/chart: {{ include "codeq.chart" . }}
{{ include "codeq.kvrocks.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.kvrocks.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "codeq.kvrocks.selectorLabels" -}}
app.kubernetes.io/name: {{ include "codeq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: kvrocks
{{- end }}

{{- define "codeq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "codeq.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "codeq.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The Secret the server's environment comes from.
*/}}
{{- define "codeq.secretName" -}}
{{- default (include "codeq.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
The store: "kvrocks" (bundled StatefulSet), "external" (config.storage, config.redisAddr,
secrets.storage or externalStore) or "sqlite" (the embedded file in config.dataDir).
*/}}
{{- define "codeq.storeMode" -}}
{{- $storage := .Values.config.storage | default "" | toString }}
{{- if .Values.kvrocks.enabled }}
{{- print "kvrocks" }}
{{- else if hasPrefix "sqlite:" $storage }}
{{- print "sqlite" }}
{{- else if or $storage .Values.config.redisAddr .Values.secrets.storage .Values.externalStore }}
{{- print "external" }}
{{- else }}
{{- print "sqlite" }}
{{- end }}
{{- end }}

{{/*
More than one server pod may run at once.
*/}}
{{- define "codeq.multiReplica" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{- end }}
{{- end }}

{{/*
The password of the bundled KVRocks: secrets.redisPassword, else the one already stored in
the release's Secret (kept across upgrades), else a new random one.
*/}}
{{- define "codeq.redisPassword" -}}
{{- if .Values.secrets.redisPassword }}
{{- .Values.secrets.redisPassword }}
{{- else if .Values.kvrocks.enabled }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "codeq.fullname" .) | default dict }}
{{- $data := get $existing "data" | default dict }}
{{- if hasKey $data "REDIS_PASSWORD" }}
{{- index $data "REDIS_PASSWORD" | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The configuration file: values.config without empty entries, with redisAddr pointing at
the bundled KVRocks when it is enabled.
*/}}
{{- define "codeq.configFile" -}}
{{- $config := dict }}
{{- range $key, $value := .Values.config }}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (empty $value))) }}
{{- $_ := set $config $key $value }}
{{- end }}
{{- end }}
{{- if .Values.kvrocks.enabled }}
{{- $_ := set $config "redisAddr" (printf "%s:%v" (include "codeq.kvrocks.fullname" .) .Values.kvrocks.port) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
Refuse values that would render a broken or unsafe release, with a message that says
what to change.
*/}}
{{- define "codeq.validate" -}}
{{- range $key := list "webhookHmacSecret" "redisPassword" "producerTokens" }}
{{- if hasKey $.Values.config $key }}
{{- fail (printf "config.%s is a secret and must not be written into the ConfigMap: set secrets.%s (or a key in secrets.existingSecret) instead" $key $key) }}
{{- end }}
{{- end }}
{{- if and .Values.kvrocks.enabled (or .Values.config.storage .Values.config.redisAddr .Values.secrets.storage .Values.externalStore) }}
{{- fail "kvrocks.enabled is true and an external store is configured (config.storage, config.redisAddr, secrets.storage or externalStore): set kvrocks.enabled=false to use the external store, or clear it to use the bundled KVRocks" }}
{{- end }}
{{- if and (eq (include "codeq.storeMode" .) "sqlite") (include "codeq.multiReplica" .) }}
{{- fail "the store is the embedded SQLite file, which one pod at a time may open: set replicaCount=1 and autoscaling.enabled=false, or use kvrocks.enabled=true / an external Redis store" }}
{{- end }}
{{- if and (eq (toString .Values.config.env) "dev") (include "codeq.multiReplica" .) }}
{{- fail "config.env is dev: each pod trusts its own local dev signing key, so tokens minted in one pod fail in another; set replicaCount=1 and autoscaling.enabled=false for a dev trial" }}
{{- end }}
{{- if ne (toString .Values.config.env) "dev" }}
{{- $missing := list }}
{{- if not .Values.config.workerJwksUrl }}{{- $missing = append $missing "config.workerJwksUrl" }}{{- end }}
{{- if not .Values.config.workerIssuer }}{{- $missing = append $missing "config.workerIssuer" }}{{- end }}
{{- if not .Values.secrets.existingSecret }}
{{- if not (or .Values.config.identityJwksUrl .Values.secrets.producerTokens) }}{{- $missing = append $missing "config.identityJwksUrl or secrets.producerTokens" }}{{- end }}
{{- if not .Values.secrets.webhookHmacSecret }}{{- $missing = append $missing "secrets.webhookHmacSecret" }}{{- end }}
{{- end }}
{{- if $missing }}
{{- fail (printf "config.env is %s, and codeq would refuse to start without: %s (or set config.env=dev for a throwaway trial)" (toString .Values.config.env) (join ", " $missing)) }}
{{- end }}
{{- end }}
{{- end }}
