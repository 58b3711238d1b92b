[[ block "b" .name ]]default [[ . ]][[ end ]]
