[[- $name := coalesce (var "job_name" .) (meta "pack.name" .) -]]
job "[[ $name ]]" {
  datacenters = [[ var "datacenters" . | toStringList ]]

  group "[[ $name ]]" {
    network {
      mode = "bridge"
      port "[[ $name ]]" {
        to = [[ var "port" . ]]
      }
      port "envoy_metrics" {
        to = 9102
      }
    }

    ephemeral_disk {
      migrate = true
      size    = [[ var "ephemeral_disk_mb" . ]]
      sticky  = true
    }

    volume "config" {
      type            = "csi"
      read_only       = false
      source          = "[[ var "config_volume" . ]]"
      attachment_mode = "file-system"
      access_mode     = "single-node-writer"
    }

    task "litestream-restore" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      config {
        image      = "[[ var "litestream_image" . ]]"
        entrypoint = ["/bin/sh"]
        args = [
          "-c",
          <<-EOF
          set -e

          DB_DIR="/alloc/data/db"
          DB_FILE="$DB_DIR/[[ var "db_file" . ]]"
          mkdir -p "$DB_DIR"

          # Skip if database already exists (ephemeral disk persisted)
          if [ -f "$DB_FILE" ]; then
            echo "Database already exists on ephemeral disk, skipping restore"
            exit 0
          fi

          # Wait for MinIO to be reachable via service mesh
          echo "Waiting for MinIO via service mesh..."
          TIMEOUT=60
          ELAPSED=0
          while [ $ELAPSED -lt $TIMEOUT ]; do
            if wget -q --spider [[ var "s3_health_url" . ]] 2>/dev/null; then
              echo "MinIO reachable via mesh"
              break
            fi
            sleep 2
            ELAPSED=$((ELAPSED + 2))
          done

          if [ $ELAPSED -ge $TIMEOUT ]; then
            echo "WARNING: Could not reach MinIO via mesh"
            echo "Continuing anyway - litestream will retry on failure"
          fi

          # Restore from S3 (MinIO)
          echo "Restoring database from S3..."
          
          if litestream restore -config /local/litestream.yml -o "$DB_FILE" "$DB_FILE"; then
            echo "Database restored successfully from S3"
          else
            echo "WARNING: No backup available - [[ $name | title ]] will start fresh"
          fi

          echo "Restore complete"
          EOF
        ]
      }

      template {
        destination = "local/litestream.yml"
        data        = <<-EOF
[[ template "litestream_config" . ]]
{{ end }}
EOF
      }

      vault {}
[[ template "resources" (var "restore_resources" .) ]]
    }

    task "litestream" {
      driver = "docker"

      lifecycle {
        hook    = "poststart"
        sidecar = true
      }

      config {
        image = "[[ var "litestream_image" . ]]"
        args  = ["replicate", "-config", "/local/litestream.yml"]
      }

      template {
        destination = "local/litestream.yml"
        data        = <<-EOF
[[ template "litestream_config" . ]]
        sync-interval: 5m
        snapshot-interval: 1h
        retention: 168h
        retention-check-interval: 1h
{{ end }}
EOF
      }

      vault {}
[[ template "resources" (var "replicate_resources" .) ]]
    }

    task "[[ $name ]]" {
      driver = "docker"

      config {
        image = "[[ var "image" . ]]"

        volumes = [
          "../alloc/data/db:[[ var "db_mount" . ]]",
        ]
      }

      volume_mount {
        volume      = "config"
        destination = "[[ var "config_mount" . ]]"
      }
[[- with var "env" . ]]

      env {
[[- range $k, $v := . ]]
        [[ $k ]] = [[ $v | quote ]]
[[- end ]]
      }
[[- end ]]
[[ template "resources" (var "resources" .) ]]
    }

    service {
      name     = "[[ $name ]]"
      provider = "consul"
      port     = "[[ var "port" . ]]"

      meta {
        envoy_metrics_port = "${NOMAD_HOST_PORT_envoy_metrics}"
      }

      check {
        name     = "[[ $name ]]-alive"
        type     = "http"
        path     = "[[ var "check_path" . ]]"
        interval = "30s"
        timeout  = "5s"
        expose   = true
      }

      connect {
        sidecar_service {
          proxy {
            transparent_proxy {}
          }
        }
      }
[[- if var "traefik_host" . ]]

      tags = [
        "traefik.enable=true",
        "traefik.http.routers.[[ $name ]].rule=Host(`[[ var "traefik_host" . ]]`)",
        "traefik.http.routers.[[ $name ]].entrypoints=[[ var "traefik_entrypoint" . ]]",
        "traefik.consulcatalog.connect=true",
      ]
[[- end ]]
    }
  }
}
