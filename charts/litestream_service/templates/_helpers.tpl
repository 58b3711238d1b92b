[[- /* The job, group, task and service name: job_name, else the pack name. */ -]]
[[- define "job_name" -]]
[[ coalesce (var "job_name" .) (meta "pack.name" .) ]]
[[- end -]]

[[- /* litestream.yml: one replica of the database in the bucket; `.` is the pack context. */ -]]
[[- define "litestream_config" -]]
{{ with secret "[[ var "secret_path" . ]]" }}
dbs:
  - path: /alloc/data/db/[[ var "db_file" . ]]
    replicas:
      - name: [[ template "job_name" . ]]
        type: s3
        bucket: [[ var "bucket" . ]]
        path: db
        endpoint: [[ var "s3_endpoint" . ]]
        access-key-id: {{ .Data.data.MINIO_ACCESS_KEY }}
        secret-access-key: {{ .Data.data.MINIO_SECRET_KEY }}
        force-path-style: true
[[- end -]]

[[- define "resources" ]]
      resources {
        cpu        = [[ .cpu ]]
        memory     = [[ .memory ]]
        memory_max = [[ .memory_max ]]
      }
[[- end -]]
