[[- $name := coalesce (var "job_name" .) (meta "pack.name" .) -]]
job "[[ $name ]]" {
  datacenters = [[ var "datacenters" . | toStringList ]]

  group "[[ $name ]]" {
    count = [[ var "count" . ]]

    network {
[[- if var "connect" . ]]
      mode = "bridge"
[[- end ]]
      port "http" {
        to = [[ var "port" . ]]
      }
    }

    service {
      name     = "[[ $name ]]"
      provider = "consul"
      port     = "[[ if var "connect" . ]][[ var "port" . ]][[ else ]]http[[ end ]]"

      check {
        name     = "[[ $name ]]-alive"
        type     = "http"
        path     = "[[ var "check_path" . ]]"
        interval = "30s"
        timeout  = "5s"
[[- if var "connect" . ]]
        expose   = true
[[- end ]]
      }
[[- if var "connect" . ]]

      connect {
        sidecar_service {
          proxy {
            transparent_proxy {}
          }
        }
      }
[[- end ]]
[[- if var "traefik_host" . ]]

      tags = [
        "traefik.enable=true",
        "traefik.http.routers.[[ $name ]].rule=Host(`[[ var "traefik_host" . ]]`)",
        "traefik.http.routers.[[ $name ]].entrypoints=[[ var "traefik_entrypoint" . ]]",
[[- if var "connect" . ]]
        "traefik.consulcatalog.connect=true",
[[- end ]]
      ]
[[- end ]]
    }

    task "[[ $name ]]" {
      driver = "docker"

      config {
        image = "[[ var "image" . ]]"
[[- with var "args" . ]]
        args  = [[ . | toStringList ]]
[[- end ]]
      }
[[- with var "env" . ]]

      env {
[[- range $k, $v := . ]]
        [[ $k ]] = [[ $v | quote ]]
[[- end ]]
      }
[[- end ]]

      resources {
        cpu    = [[ (var "resources" .).cpu ]]
        memory = [[ (var "resources" .).memory ]]
      }
    }
  }
}
