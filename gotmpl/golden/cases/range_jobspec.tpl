job "[[ .name ]]" {
  datacenters = [[ .job.datacenters | toJson ]]
  [[- range $idx, $p := .ports ]]
  port "[[ $p.name ]]" { static = [[ $p.port ]] }
  [[- end ]]
  count = [[ .job.count ]]
}
