# One-time migration seed (run once, before the first deployment, as a pre_sync hook with
# once: true): copy the docker-compose Overseerr database on Hestia and replicate it to the
# overseerr-litestream bucket, so the job's litestream-restore task finds a backup instead of
# starting Overseerr with an empty database.
job "overseerr-litestream-seed" {
  datacenters = ["dc1"]
  type        = "batch"

  # The docker-compose data lives on Hestia.
  constraint {
    attribute = "${node.unique.name}"
    value     = "Hestia"
  }

  group "seed" {
    restart {
      attempts = 0
      mode     = "fail"
    }

    task "replicate" {
      driver = "docker"

      config {
        image      = "litestream/litestream:0.5"
        entrypoint = ["/bin/sh"]
        volumes    = ["/var/lib/docker/volumes/downloads_config-overseerr/_data/db:/source:ro"]
        args = [
          "-c",
          <<-EOF
          set -e
          mkdir -p /alloc/data/db
          cp /source/db.sqlite3 /alloc/data/db/db.sqlite3
          # Replicate while the child runs: long enough for the first snapshot, then stop.
          litestream replicate -config /local/litestream.yml -exec "sleep 60"
          EOF
        ]
      }

      template {
        destination = "local/litestream.yml"
        data        = <<-EOF
{{ with secret "nomad/default/overseerr" }}
dbs:
  - path: /alloc/data/db/db.sqlite3
    replicas:
      - name: overseerr
        type: s3
        bucket: overseerr-litestream
        path: db
        endpoint: http://minio-minio.virtual.consul
        access-key-id: {{ .Data.data.MINIO_ACCESS_KEY }}
        secret-access-key: {{ .Data.data.MINIO_SECRET_KEY }}
        force-path-style: true
{{ end }}
EOF
      }

      vault {}

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
