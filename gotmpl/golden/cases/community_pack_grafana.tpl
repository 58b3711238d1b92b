[[- /* nomad-pack-community-registry packs/grafana (_helpers.tpl + grafana.nomad.tpl), .x written .x, .pack_name written .pack_name, toJson written toJson */ -]]
// allow nomad-pack to set the job name

[[- define "job_name" -]]
[[ coalesce ( .job_name) (.pack_name) | quote ]]
[[- end -]]

// only deploys to a region if specified

[[ define "region" -]]
[[- if .region -]]
  region = "[[ .region ]]"
[[- end -]]
[[- end -]]
job [[ template "job_name" . ]] {
  [[ template "region" . ]]
  datacenters = [[ .datacenters | toJson ]]
  node_pool   = [[ .node_pool | quote ]]

  // must have linux for network mode
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  group "grafana" {
    count = 1

    network {
      mode = "bridge"

    [[- if .dns ]]
    dns {
      [[- if .dns.servers ]]
        servers = [[ .dns.servers | toPrettyJson ]]
      [[- end ]]
      [[- if .dns.searches ]]
        searches = [[ .dns.searches | toPrettyJson ]]
      [[- end ]]
      [[- if .dns.options ]]
        options = [[ .dns.options | toPrettyJson ]]
      [[- end ]]
    }
    [[- end ]]

      port "http" {
        to = [[ .grafana_http_port ]]
      }
    }

    [[- if .grafana_vault ]]
    vault {
      policies = [[ .grafana_vault | toJson ]]
      change_mode   = "noop"
    }
    [[- end ]]

    [[- if .grafana_volume ]]
    volume "grafana" {
      type = [[ .grafana_volume.type | quote ]]
      read_only = false
      source = [[ .grafana_volume.source | quote ]]
    }
    [[- end ]]

    service {
      name = "grafana"
      port = [[ .grafana_http_port | quote ]]
      tags = [[ .grafana_consul_tags | toJson ]]

      connect {
        sidecar_service {
          proxy {
            [[ range $upstream := (.grafana_upstreams) ]]
            upstreams {
              destination_name = [[ $upstream.name | quote ]]
              local_bind_port  = [[ $upstream.port ]]
            }
            [[ end ]]
          }
        }
      }
    }

    task "grafana" {
      driver = "docker"

    [[- if .grafana_volume ]]
      volume_mount {
        volume      = "grafana"
        destination = "/var/lib/grafana"
        read_only   = false
      }
    [[- end ]]

      config {
        image = "grafana/grafana:[[ .grafana_version_tag ]]"
        ports = ["http"]
      }

      resources {
        cpu    = [[ .grafana_resources.cpu ]]
        memory = [[ .grafana_resources.memory ]]
      }

      env {
        [[- range $var := (.grafana_env_vars) ]]
        [[ $var.key ]] = [[ $var.value | quote ]]
        [[- end ]]
      }

      [[- if .grafana_task_artifacts ]]
        [[- range $artifact := (.grafana_task_artifacts) ]]

      artifact {
        source      = [[ $artifact.source | quote ]]
        destination = [[ $artifact.destination | quote ]]
        mode = [[ $artifact.mode | quote ]]
        [[- if $artifact.options ]]
        options {
          [[- range $option, $val := $artifact.options ]]
          [[ $option ]] = [[ $val | quote ]]
          [[- end ]]
        }
        [[- end ]]

      }
        [[- end ]]
      [[- end ]]

      template {
        data = <<EOF
[[ .grafana_task_config_ini ]]
EOF
        destination = "/local/grafana/grafana.ini"
      }

      [[- if .grafana_task_config_dashboards ]]
      template {
        data = <<EOF
[[ .grafana_task_config_dashboards ]]
EOF
        destination = "/local/grafana/provisioning/dashboards/dashboards.yaml"
      }
      [[- end ]]

      [[- if .grafana_task_config_datasources ]]
      template {
        data = <<EOF
[[ .grafana_task_config_datasources ]]
EOF
        destination = "/local/grafana/provisioning/datasources/datasources.yaml"
      }
      [[- end ]]

      [[- if .grafana_task_config_plugins ]]
      template {
        data = <<EOF
[[ .grafana_task_config_plugins ]]
EOF
        destination = "/local/grafana/provisioning/plugins/plugins.yml"
      }
      [[- end ]]
    }
  }
}
