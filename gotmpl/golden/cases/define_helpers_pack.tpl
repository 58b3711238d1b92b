[[- define "job_name" -]]
[[- if eq .job_name "" -]]
[[- .pack_name | quote -]]
[[- else -]]
[[- .job_name | quote -]]
[[- end -]]
[[- end -]]
[[- define "region" -]]
[[- if not (eq .region "") -]]
region = [[ .region | quote ]]
[[- end -]]
[[- end -]]
job [[ template "job_name" . ]] {
  [[ template "region" . ]]
  type = "service"
}
