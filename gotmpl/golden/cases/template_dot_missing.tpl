[[ define "d" ]][[ .x ]][[ end ]][[ template "d" ]]
