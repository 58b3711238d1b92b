[[ if true ]][[ define "a" ]]x[[ end ]][[ end ]]
