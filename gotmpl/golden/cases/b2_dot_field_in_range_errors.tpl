[[ range .list ]][[ .y ]][[ end ]]
