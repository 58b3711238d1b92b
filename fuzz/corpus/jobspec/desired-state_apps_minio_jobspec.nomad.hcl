variable "minio_image" {
  type    = string
  default = "quay.io/minio/minio:latest"
}

job "minio" {
  datacenters = ["dc1"]

  group "minio" {
    network {
      mode = "bridge"
      port "s3" {
        to = 9000
      }
      port "envoy_metrics" {
        to = 9102
      }
    }

    ephemeral_disk {
      migrate = true
      sticky  = true
      size    = 1024
    }

    service {
      name     = "minio-minio"
      provider = "consul"
      port     = "9000"

      meta {
        envoy_metrics_port = "${NOMAD_HOST_PORT_envoy_metrics}"
      }

      check {
        name     = "minio-alive"
        type     = "http"
        path     = "/minio/health/live"
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
    }

    task "minio" {
      driver = "docker"

      vault {
        env = false
      }

      config {
        image = var.minio_image
        args  = ["server", "/alloc/data", "--console-address", ":9001"]
      }

      template {
        data        = <<-EOF
          {{ with secret "nomad/data/default/minio" }}
          MINIO_ROOT_USER="{{ .Data.data.MINIO_ROOT_USER }}"
          MINIO_ROOT_PASSWORD="{{ .Data.data.MINIO_ROOT_PASSWORD }}"
          {{ end }}
          EOF
        destination = "secrets/file.env"
        env         = true
      }

      resources {
        cpu        = 200
        memory     = 512
        memory_max = 1024
      }
    }
  }
}
