[[ range .list ]][[ $.name ]][[ end ]]
