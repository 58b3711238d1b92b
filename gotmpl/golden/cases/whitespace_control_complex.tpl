a
[[- if .t ]]
  b
[[- else ]]
  c
[[- end ]]
d
