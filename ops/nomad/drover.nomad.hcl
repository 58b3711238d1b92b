# drover's own Nomad job: drover operating drover. Run once by hand
# (`nomad job run ops/nomad/drover.nomad.hcl`), or keep it in the repository drover watches
# (then drover re-applies its own job; a bad commit can stop it, so keep `auto_revert` on).
#
# Needs: a host volume `drover-data` on the nodes allowed by the constraint (or switch the
# `volume` block to the CSI variant below), Vault's JWT auth mount `jwt-nomad` with the roles
# named here, secrets at kv/data/drover (api_token, webhook_secret, git_token), the Nomad and
# Consul secrets engines for short-lived tokens, and a MinIO bucket `drover-litestream`.

variable "image" {
  type    = string
  default = "ghcr.io/example/drover:latest"
}

variable "domain" {
  type    = string
  default = "drover.example.org"
}

variable "repo_url" {
  type    = string
  default = "https://git.example.org/infra/cluster-state.git"
}

job "drover" {
  datacenters = ["dc1"]
  type        = "service"

  group "drover" {
    # One drover at a time: its SQLite store is single-writer.
    count = 1

    update {
      max_parallel     = 1
      min_healthy_time = "10s"
      healthy_deadline = "3m"
      auto_revert      = true
    }

    network {
      port "http" {
        to = 8080
      }
    }

    # The SQLite store and the Git mirror. Host volume variant:
    volume "data" {
      type      = "host"
      source    = "drover-data"
      read_only = false
    }
    # CSI variant (a volume created with `nomad volume create` or a csi_volume resource):
    # volume "data" {
    #   type            = "csi"
    #   source          = "drover-data"
    #   access_mode     = "single-node-writer"
    #   attachment_mode = "file-system"
    # }

    service {
      name     = "drover"
      port     = "http"
      provider = "consul"
      tags = [
        "traefik.enable=true",
        "traefik.http.routers.drover.rule=Host(`${var.domain}`)",
        "traefik.http.routers.drover.entrypoints=websecure",
        "traefik.http.routers.drover.tls=true",
      ]

      check {
        name     = "drover healthz"
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    # Restore the store from Litestream before drover starts (only when the volume is empty and a
    # replica exists), so a new node starts where the old one stopped.
    task "restore" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      config {
        image = "litestream/litestream:0.3"
        args  = ["restore", "-if-db-not-exists", "-if-replica-exists", "-config", "/local/litestream.yml", "/var/lib/drover/drover.db"]
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/drover"
      }

      vault {
        role = "drover-litestream"
      }

      template {
        destination = "local/litestream.yml"
        data        = <<-EOT
          dbs:
            - path: /var/lib/drover/drover.db
              replicas:
                - type: s3
                  bucket: drover-litestream
                  path: db
                  endpoint: {{ with service "minio" }}{{ with index . 0 }}http://{{ .Address }}:{{ .Port }}{{ end }}{{ end }}
                  force-path-style: true
        EOT
      }

      template {
        destination = "secrets/s3.env"
        env         = true
        data        = <<-EOT
          {{ with secret "kv/data/drover-litestream" }}
          LITESTREAM_ACCESS_KEY_ID={{ .Data.data.access_key }}
          LITESTREAM_SECRET_ACCESS_KEY={{ .Data.data.secret_key }}
          {{ end }}
        EOT
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }

    task "drover" {
      driver = "docker"

      config {
        image   = var.image
        ports   = ["http"]
        command = "drover"
        args    = ["serve", "-c", "/local/drover.yaml"]
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/drover"
      }

      # Templates read the API token, webhook secret and Git token from Vault with this role.
      vault {
        role = "drover"
      }

      # drover itself logs in to Vault (for vault_secret preflight) with this workload identity:
      # Nomad writes the JWT to secrets/nomad_vault_drover.jwt and rotates it; drover re-reads
      # the file at each login (VAULT_JWT_FILE).
      identity {
        name        = "vault_drover"
        aud         = ["vault.io"]
        file        = true
        ttl         = "1h"
        change_mode = "noop"
      }

      env {
        DROVER_LOG_FORMAT = "json"
        NOMAD_ADDR        = "https://nomad.service.consul:4646"
        CONSUL_HTTP_ADDR  = "https://consul.service.consul:8501"
        VAULT_ADDR        = "https://vault.service.consul:8200"
        VAULT_JWT_ROLE    = "drover-controller"
        VAULT_JWT_MOUNT   = "jwt-nomad"
        VAULT_JWT_FILE    = "${NOMAD_SECRETS_DIR}/nomad_vault_drover.jwt"
      }

      template {
        destination = "local/drover.yaml"
        data        = <<-EOT
          repo:
            url: ${var.repo_url}
            ref: main
            poll_interval: 60s
            auth: { token_file: /secrets/git-token }
          data_dir: /var/lib/drover
          listen: 0.0.0.0:8080
          web:
            allowed_hosts: [${var.domain}]
            webhook_secret_file: /secrets/webhook-secret
            token_file: /secrets/api-token
          notifications:
            channels: { ops: { webhook: { url_file: /secrets/ops-hook-url } } }
            routes: [{ channels: [ops] }]
        EOT
      }

      # Secrets as files (never env): drover reads them at start; a new value restarts drover.
      template {
        destination = "secrets/api-token"
        change_mode = "restart"
        data        = "{{ with secret \"kv/data/drover\" }}{{ .Data.data.api_token }}{{ end }}"
      }

      template {
        destination = "secrets/webhook-secret"
        change_mode = "restart"
        data        = "{{ with secret \"kv/data/drover\" }}{{ .Data.data.webhook_secret }}{{ end }}"
      }

      template {
        destination = "secrets/git-token"
        change_mode = "restart"
        data        = "{{ with secret \"kv/data/drover\" }}{{ .Data.data.git_token }}{{ end }}"
      }

      template {
        destination = "secrets/ops-hook-url"
        change_mode = "restart"
        data        = "{{ with secret \"kv/data/drover\" }}{{ .Data.data.ops_hook_url }}{{ end }}"
      }

      # Short-lived Nomad and Consul tokens from Vault's secrets engines, renewed by Nomad.
      template {
        destination = "secrets/tokens.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with secret "nomad/creds/drover" }}NOMAD_TOKEN={{ .Data.secret_id }}{{ end }}
          {{ with secret "consul/creds/drover" }}CONSUL_HTTP_TOKEN={{ .Data.token }}{{ end }}
        EOT
      }

      resources {
        cpu    = 500
        memory = 256
      }
    }

    # Continuous replication of the store to MinIO (see ops/runbooks/disaster-recovery.md). This
    # is the job's periodic backup; `drover backup` is for copies at chosen moments (upgrades).
    task "litestream" {
      driver = "docker"

      lifecycle {
        hook    = "poststart"
        sidecar = true
      }

      config {
        image = "litestream/litestream:0.3"
        args  = ["replicate", "-config", "/local/litestream.yml"]
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/drover"
      }

      vault {
        role = "drover-litestream"
      }

      template {
        destination = "local/litestream.yml"
        data        = <<-EOT
          dbs:
            - path: /var/lib/drover/drover.db
              replicas:
                - type: s3
                  bucket: drover-litestream
                  path: db
                  endpoint: {{ with service "minio" }}{{ with index . 0 }}http://{{ .Address }}:{{ .Port }}{{ end }}{{ end }}
                  force-path-style: true
        EOT
      }

      template {
        destination = "secrets/s3.env"
        env         = true
        data        = <<-EOT
          {{ with secret "kv/data/drover-litestream" }}
          LITESTREAM_ACCESS_KEY_ID={{ .Data.data.access_key }}
          LITESTREAM_SECRET_ACCESS_KEY={{ .Data.data.secret_key }}
          {{ end }}
        EOT
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
