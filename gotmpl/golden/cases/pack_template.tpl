[[- /* a nomad pack template */ -]]
job [[ .job_name | quote ]] {
  [[- if .region ]]
  region      = [[ .region | quote ]]
  [[- end ]]
  datacenters = [[ .datacenters | toJson ]]
  type        = "service"

  group "app" {
    count = [[ .count ]]
    [[- range $name, $port := .ports ]]
    network {
      port [[ $name | quote ]] { to = [[ $port ]] }
    }
    [[- end ]]

    task "server" {
      driver = "docker"
      config {
        image = "[[ .image ]]:[[ .tag | default "latest" ]]"
      }
      [[- if .env ]]
      env {
        [[- range $k, $v := .env ]]
        [[ $k ]] = [[ $v | quote ]]
        [[- end ]]
      }
      [[- end ]]
      template {
        data = <<EOF
{{ with secret "kv/data/[[ .job_name ]]" }}PW={{ .Data.data.pw }}{{ end }}
EOF
        destination = "secrets/env"
        env         = true
      }
      resources {
        cpu    = [[ .resources.cpu ]]
        memory = [[ .resources.memory ]]
      }
    }
  }
}
