[[ range .ports ]][[ .name ]]:[[ range $.list ]][[ . ]][[ end ]] [[ end ]]
