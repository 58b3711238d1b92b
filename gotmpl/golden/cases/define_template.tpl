[[ define "t" ]]T([[ . ]])[[ end ]][[ template "t" .name ]] [[ template "t" ]]
