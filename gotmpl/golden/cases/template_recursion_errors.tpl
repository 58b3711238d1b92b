[[ define "r" ]]x[[ template "r" . ]][[ end ]][[ template "r" . ]]
