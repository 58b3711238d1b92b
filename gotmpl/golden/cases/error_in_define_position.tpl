[[ define "t" ]]
  x [[ .a.b ]]
[[ end ]]
[[ template "t" .name ]]
