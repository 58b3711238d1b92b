[[- /* nomad-pack-community-registry packs/hello_world (_helpers.tpl + hello_world.nomad.tpl), .x written .x, .pack_name written .pack_name, toJson written toJson */ -]]
[[- define "job_name" -]]
[[ coalesce ( .job_name) (.pack_name) | quote ]]
[[- end -]]

[[ define "region" -]]
[[- if .region -]]
  region = "[[ .region ]]"
[[- end -]]
[[- end -]]
job [[ template "job_name" . ]] {
  [[- template "region" . ]]
  datacenters = [[ .datacenters | toJson ]]
  node_pool   = [[ .node_pool | quote ]]
  type = "service"

  group "app" {
    count = [[ .count ]]

    network {
      port "http" {
        to = 8000
      }
    }

    [[- if .register_service ]]

    service {
      name = "[[ .service_name ]]"
      tags = [[ .service_tags | toJson ]]
      provider = "nomad"
      port = "http"
      check {
        name     = "alive"
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "2s"
      }
    }

    [[- end ]]

    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    task "server" {
      driver = "docker"

      config {
        image = "mnomitch/hello_world_server"

        ports = [
          "http"
          ]
      }

      env {
        MESSAGE = [[ .message | quote ]]
      }
    }
  }
}
