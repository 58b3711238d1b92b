job "[[.job_name]]" {
  datacenters = ["[[.datacenter]]"]
  group "g" {
    count = [[.count]]
    [[- if .enable_canary ]]
    update { canary = 1 }
    [[- end ]]
  }
}
