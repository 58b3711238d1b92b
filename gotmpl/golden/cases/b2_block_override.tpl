[[ define "b" ]]overridden[[ end ]][[ block "b" . ]]default[[ end ]]
