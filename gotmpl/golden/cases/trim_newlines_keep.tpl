[[ if .t ]]
yes
[[ end ]]
