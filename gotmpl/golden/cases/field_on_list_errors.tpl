[[ .list.x ]]
