[[ range .ports ]][[ with .port ]][[ . ]] [[ end ]][[ end ]]
