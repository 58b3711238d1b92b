[[- /* nomad-pack-community-registry packs/redis (_helpers.tpl + redis.nomad.tpl), .x written .x, .pack_name written .pack_name, toJson written toJson */ -]]
// allow nomad-pack to set the job name

[[- define "job_name" -]]
[[- if eq (.job_name) "" -]]
[[- .pack_name | quote -]]
[[- else -]]
[[- .job_name | quote -]]
[[- end -]]
[[- end -]]

// only deploys to a region if specified

[[- define "region" -]]
[[- if not (eq (.region) "") -]]
region = [[ .region | quote]]
[[- end -]]
[[- end -]]
job [[ template "job_name" . ]] {
  [[ template "region" . ]]
  datacenters = [[ .datacenters | toJson ]]
  node_pool   = [[ .node_pool | quote ]]

  group "redis" {
    count = [[ .app_count ]]

    [[- if .use_host_volume ]]
    volume "redis" {
      type      = "host"
      source    = [[ .redis_volume | quote ]]
      read_only = false
    }
    [[- end ]]

    network {
      mode = [[ .network.mode | quote ]]
      [[- range $port := .network.ports ]]
      port [[ $port.name | quote ]] {
        to = [[ $port.port ]]
      }
      [[- end ]]
    }

    update {
      min_healthy_time  = [[ .update.min_healthy_time | quote ]]
      healthy_deadline  = [[ .update.healthy_deadline | quote ]]
      progress_deadline = [[ .update.progress_deadline | quote ]]
      auto_revert       = [[ .update.auto_revert ]]
    }

    [[- if .register_consul_service ]]
    service {
      name = [[ .consul_service_name | quote ]]
      port = [[ .consul_service_port | quote ]]
      tags = [[ .consul_tags | toJson ]]

      connect {
        sidecar_service {}
      }

      [[- if .has_health_check ]]
      check {
        name     = "redis"
        type     = "tcp"
        port     = [[ .health_check.port ]]
        interval = [[ .health_check.interval | quote ]]
        timeout  = [[ .health_check.timeout | quote ]]
      }
      [[- end ]]
    }
    [[- end ]]

    restart {
      attempts = [[ .restart_attempts ]]
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    task "redis" {
      driver = "docker"
      [[- if .use_host_volume ]]
      volume_mount {
        volume      = "redis"
        destination = "/data"
        read_only   = false
      }
      [[- end ]]
      config {
        image = [[ .image | quote ]]
      }

      resources {
        cpu    = [[ .resources.cpu ]]
        memory = [[ .resources.memory ]]
      }
    }
  }
}
