[[ range .list ]]<[[ . ]]>[[ end ]]
