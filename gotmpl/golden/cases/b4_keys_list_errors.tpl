[[ keys .list ]]
