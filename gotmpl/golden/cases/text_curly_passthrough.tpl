template { data = "{{ with secret \"kv/x\" }}{{ .Data.data.pw }}{{ end }}" }
[[ .name ]] {{ .name }}
